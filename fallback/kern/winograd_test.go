package kern

import (
	"math"
	"math/rand/v2"
	"testing"
)

// wgCases are 3×3×3 stride-1 pad-1 shapes for the Winograd path: a 1×1×1 volume, odd
// extents (partial tiles on every axis), W over several 8-tile units (33 → 17 tiles),
// channel counts that are not multiples of any mr, partial last panels, and the
// velocity model's 64→64 block at a smaller batch.
var wgCases = []struct {
	name      string
	n, ci, co int
	in        [3]int
}{
	{"4to4_1x1x1", 1, 4, 4, v3(1, 1, 1)},
	{"5to7_odd", 2, 5, 7, v3(3, 5, 9)},
	{"13to9_w33", 2, 13, 9, v3(4, 7, 33)},
	{"8to24_flat", 1, 8, 24, v3(2, 2, 17)},
	{"16to16_big", 1, 16, 16, v3(8, 16, 16)},
	{"64to64_model", 1, 64, 64, v3(4, 8, 16)},
}

// wgMag bounds the Winograd computation's rounding: for every output, Σ over input
// channels and transform positions of |Aᵀ|·(|G|g)·(|Bᵀ||d|), i.e. the sum of the
// absolute values of every term the algorithm adds (transforms applied with absolute
// coefficients to absolute values). The classic bound for sums of products then gives
// |error| ≤ γ_k·wgMag with k the longest chain of roundings: 6 in the filter transform
// (two per axis), 3 in the input transform, 1 product, ci in the GEMM's register chain,
// 6 in the output transform and 1 for the bias: k = ci + 17.
func wgMag(x, w []float32, n, ci, co int, in [3]int, bias []float32) []float64 {
	g := newWgGeom(in)
	vol := in[0] * in[1] * in[2]
	absF := func(a, b, c float64) [4]float64 { return [4]float64{a, (a + b + c) / 2, (a + b + c) / 2, c} }
	// |U| per (o, i).
	au := make([][64]float64, co*ci)
	for o := range co {
		for i := range ci {
			var k [27]float64
			for j := range 27 {
				k[j] = math.Abs(float64(w[(o*ci+i)*27+j]))
			}
			var s1 [3][3][4]float64
			for d := range 3 {
				for h := range 3 {
					s1[d][h] = absF(k[(d*3+h)*3], k[(d*3+h)*3+1], k[(d*3+h)*3+2])
				}
			}
			for xh := range 4 {
				for xw := range 4 {
					var s2 [3]float64
					for d := range 3 {
						t := absF(s1[d][0][xw], s1[d][1][xw], s1[d][2][xw])
						s2[d] = t[xh]
					}
					t := absF(s2[0], s2[1], s2[2])
					for xd := range 4 {
						au[o*ci+i][(xd*4+xh)*4+xw] = t[xd]
					}
				}
			}
		}
	}
	// |Bᵀ| rows: (1,0,1,0), (0,1,1,0), (0,1,1,0), (0,1,0,1).
	bt := [4][4]float64{{1, 0, 1, 0}, {0, 1, 1, 0}, {0, 1, 1, 0}, {0, 1, 0, 1}}
	at := [2][4]float64{{1, 1, 1, 0}, {0, 1, 1, 1}}
	mag := make([]float64, n*co*vol)
	at3 := func(sn, td, th, tw int, o int, p *[64]float64) {
		for a := range 2 {
			for b := range 2 {
				for c := range 2 {
					z, y, x := 2*td+a, 2*th+b, 2*tw+c
					if z >= in[0] || y >= in[1] || x >= in[2] {
						continue
					}
					var s float64
					for xi := range 64 {
						s += at[a][xi/16] * at[b][xi/4%4] * at[c][xi%4] * p[xi]
					}
					if bias != nil {
						s += math.Abs(float64(bias[o]))
					}
					mag[(sn*co+o)*vol+(z*in[1]+y)*in[2]+x] = s
				}
			}
		}
	}
	for sn := range n {
		for td := range g.dt {
			for th := range g.ht {
				for tw := range g.wt {
					av := make([][64]float64, ci)
					for i := range ci {
						var d [4][4][4]float64
						for a := range 4 {
							for b := range 4 {
								for c := range 4 {
									z, y, xx := 2*td+a-1, 2*th+b-1, 2*tw+c-1
									if z >= 0 && z < in[0] && y >= 0 && y < in[1] && xx >= 0 && xx < in[2] {
										d[a][b][c] = math.Abs(float64(x[(sn*ci+i)*vol+(z*in[1]+y)*in[2]+xx]))
									}
								}
							}
						}
						for xi := range 64 {
							var s float64
							for a := range 4 {
								for b := range 4 {
									for c := range 4 {
										s += bt[xi/16][a] * bt[xi/4%4][b] * bt[xi%4][c] * d[a][b][c]
									}
								}
							}
							av[i][xi] = s
						}
					}
					for o := range co {
						var p [64]float64
						for i := range ci {
							for xi := range 64 {
								p[xi] += au[o*ci+i][xi] * av[i][xi]
							}
						}
						at3(sn, td, th, tw, o, &p)
					}
				}
			}
		}
	}
	return mag
}

// flipTranspose returns the weights of the input gradient as a forward convolution:
// w'[i][o][k] = w[o][i][26−k].
func flipTranspose(w []float32, co, ci int) []float32 {
	out := make([]float32, len(w))
	for o := range co {
		for i := range ci {
			for k := range 27 {
				out[(i*co+o)*27+k] = w[(o*ci+i)*27+26-k]
			}
		}
	}
	return out
}

func TestWinograd(t *testing.T) {
	defer func(f bool) { forceWinograd = f }(forceWinograd)
	forceWinograd = true
	const u = 1.0 / (1 << 24)
	for ci, tc := range wgCases {
		t.Run(tc.name, func(t *testing.T) {
			s := shape(tc.n, tc.ci, tc.co, tc.in, c3(3), c3(1), c3(1))
			if !winogradOK(s, false) || !winogradOK(s, true) {
				t.Fatalf("shape %+v does not take the Winograd path", s)
			}
			r := rand.New(rand.NewPCG(7, uint64(ci)))
			x := randSlice(r, s.N*s.Ci*s.inSize())
			w := randSlice(r, s.Co*s.Ci*27)
			b := randSlice(r, s.Co)
			dy := randSlice(r, s.N*s.Co*s.outSize())
			refY, _ := refForward(x, w, b, s)
			magY := wgMag(x, w, s.N, s.Ci, s.Co, s.In, b)
			refDx, _ := refBackwardData(dy, w, s)
			magDx := wgMag(dy, flipTranspose(w, s.Co, s.Ci), s.N, s.Co, s.Ci, s.In, nil)
			refDw, _, refDb, dbMag := refBackwardWeight(x, dy, s)
			magDw := wgMagW(x, dy, s)
			chunks := (s.N*newWgGeom(s.In).units*wgLanes + wgChunkTiles - 1) / wgChunkTiles
			forProcs(t, func(t *testing.T) {
				dw, db := randSlice(r, len(refDw)), randSlice(r, s.Co)
				Conv3dBackwardWeight(x, dy, dw, db, s)
				// Rounding chain: 3 + 3 (transforms) + 1 (product) + a chunk's
				// register chain (wgChunkTiles) + one per chunk + 6 (Gᵀ transform).
				compare(t, "dw", dw, refDw, magDw, float64(13+wgChunkTiles+chunks)*u)
				compare(t, "db", db, refDb, dbMag, 2*u)
				y := randSlice(r, len(refY))
				Conv3dForward(x, w, b, y, s)
				compare(t, "y", y, refY, magY, float64(s.Ci+17)*u)
				dx := randSlice(r, len(refDx))
				Conv3dBackwardData(dy, w, dx, s)
				compare(t, "dx", dx, refDx, addFloor(magDx), float64(s.Co+17)*u)
			})
		})
	}
}

// TestWinogradTransforms checks every kernel set's transforms against the plain-Go ones
// on random data, bit for bit (they add the same terms in the same order).
func TestWinogradTransforms(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	const l, row, plane, ds, ms = 9, 2 * 9, 4 * 2 * 9, 11, 13
	src := randSlice(r, 4*plane)
	m := randSlice(r, 64*ms)
	for _, set := range availableKernels() {
		t.Run(set.name, func(t *testing.T) {
			want, got := make([]float32, 64*ds), make([]float32, 64*ds)
			wgInGo(src, l, row, plane, want, ds)
			set.wgIn(src, l, row, plane, got, ds)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("wgIn[%d] = %g, want %g", i, got[i], want[i])
				}
			}
			wgDyGo(src, l, row, plane, want, ds)
			set.wgDy(src, l, row, plane, got, ds)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("wgDy[%d] = %g, want %g", i, got[i], want[i])
				}
			}
			tin := randSlice(r, 8*512)
			const dsig, dt = 8*32 + 5, 32
			tw, tg := make([]float32, 64*dsig), make([]float32, 64*dsig)
			wgT8Go(tin, tw, dsig, dt)
			set.wgT8(tin, tg, dsig, dt)
			for i := range tw {
				if tw[i] != tg[i] {
					t.Fatalf("wgT8[%d] = %g, want %g", i, tg[i], tw[i])
				}
			}
			var g8 [27 * 8]float32
			copy(g8[:], randSlice(r, len(g8)))
			fw, fg := make([]float32, 64*ds), make([]float32, 64*ds)
			wgFiltGo(&g8, fw, ds)
			set.wgFilt(&g8, fg, ds)
			for i := range fw {
				if math.Float32bits(fw[i]) != math.Float32bits(fg[i]) {
					t.Fatalf("wgFilt[%d] = %g, want %g", i, fg[i], fw[i])
				}
			}
			var wo, go_ [64]float32
			wgOutGo(m, ms, 0.25, &wo)
			set.wgOut(m, ms, 0.25, &go_)
			if wo != go_ {
				t.Fatalf("wgOut differs:\n got %v\nwant %v", go_, wo)
			}
		})
	}
}

// wgMagW is wgMag for the weight gradient: for every weight, Σ over transform
// positions of |Gᵀ|·Σ_tiles (|A|⊗³|dy|)·(|Bᵀ|⊗³|x|).
func wgMagW(x, dy []float32, s ConvShape) []float64 {
	g := newWgGeom(s.In)
	in := s.In
	vol := s.inSize()
	bt := [4][4]float64{{1, 0, 1, 0}, {0, 1, 1, 0}, {0, 1, 1, 0}, {0, 1, 0, 1}}
	a := [4][2]float64{{1, 0}, {1, 1}, {1, 1}, {0, 1}}
	gt := [3][4]float64{{1, 0.5, 0.5, 0}, {0, 0.5, 0.5, 0}, {0, 0.5, 0.5, 1}}
	p := make([][64]float64, s.Co*s.Ci)
	for sn := range s.N {
		for td := range g.dt {
			for th := range g.ht {
				for tw := range g.wt {
					av := make([][64]float64, s.Ci)
					for i := range s.Ci {
						for xi := range 64 {
							for e := range 64 {
								z, y, xx := 2*td+e/16-1, 2*th+e/4%4-1, 2*tw+e%4-1
								if z < 0 || z >= in[0] || y < 0 || y >= in[1] || xx < 0 || xx >= in[2] {
									continue
								}
								c := bt[xi/16][e/16] * bt[xi/4%4][e/4%4] * bt[xi%4][e%4]
								av[i][xi] += c * math.Abs(float64(x[(sn*s.Ci+i)*vol+(z*in[1]+y)*in[2]+xx]))
							}
						}
					}
					for o := range s.Co {
						var ad [64]float64
						for xi := range 64 {
							for e := range 8 {
								z, y, xx := 2*td+e/4, 2*th+e/2%2, 2*tw+e%2
								if z >= in[0] || y >= in[1] || xx >= in[2] {
									continue
								}
								c := a[xi/16][e/4] * a[xi/4%4][e/2%2] * a[xi%4][e%2]
								ad[xi] += c * math.Abs(float64(dy[(sn*s.Co+o)*vol+(z*in[1]+y)*in[2]+xx]))
							}
						}
						for i := range s.Ci {
							for xi := range 64 {
								p[o*s.Ci+i][xi] += ad[xi] * av[i][xi]
							}
						}
					}
				}
			}
		}
	}
	mag := make([]float64, s.Co*s.Ci*27)
	for oi := range p {
		for k := range 27 {
			var m float64
			for xi := range 64 {
				m += gt[k/9][xi/16] * gt[k/3%3][xi/4%4] * gt[k%3][xi%4] * p[oi][xi]
			}
			mag[oi*27+k] = m
		}
	}
	return mag
}
