package kern

// Winograd F(2×2×2, 3×3×3): the 3×3×3, stride-1, pad-1 convolutions (every convolution
// of the velocity model) computed on 2×2×2 output tiles from 4×4×4 input tiles with
// 64 multiplications per tile and channel pair instead of 216 (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2015, in three dimensions). Per tile:
//
//	y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A   (each factor applied along D, H and W)
//
// with, along one axis, Bᵀd = (d0−d2, d1+d2, d2−d1, d1−d3), Gg = (g0, (g0+g1+g2)/2,
// (g0−g1+g2)/2, g2) and Aᵀm = (m0+m1+m2, m1−m2−m3). The sum over input channels of the
// 64 products is 64 independent GEMMs (one per transform position ξ), which run on the
// packed micro-kernels; the transforms run 8 tiles at a time (8 lanes).
//
// Layout. The input is first rewritten per channel into even/odd split rows (wgPrep):
// row (z, y) of the padded volume xp (xp[i] = x[i−1]) is stored as E[j] = xp[2j] and
// then O[j] = xp[2j+1], so tile j along W reads E[j], O[j], E[j+1], O[j+1], each a
// contiguous 8-lane load for 8 consecutive tiles. A "unit" is 8 consecutive tiles of one
// tile row (n, td, th); a panel is nr/8 units, the B operand's nr columns.
//
// Accuracy: the transforms add at most 8 (input) and 27 (output) terms with
// coefficients ±1 and ½, so results differ from the direct convolution by a few ulps of
// the largest partial sums (checked in winograd_test.go against float64).

// wgLanes is the number of tiles a transform handles at once.
const wgLanes = 8

// useWinograd selects the Winograd path for the shapes it serves; tests turn it off to
// compare with the direct GEMM path, and forceWinograd runs it with the plain-Go
// transforms too (normally only the assembly sets use it, as the Go transforms are
// slower than the direct path).
var useWinograd, forceWinograd = true, false

// winogradOK reports whether a convolution of shape s runs as Winograd, for the weight
// gradient when weight is set: 3×3×3, stride 1, pad 1, at least 4 channels each way, a
// kernel set whose transforms are fast enough (ks.winograd, and ks.winogradWeight for the
// weight gradient), and (unless forced) at least 64 tiles with at least half of the 8
// lanes of each unit used. On fewer tiles the transforms of the weights cost more than
// they save, and the rounding, bounded by the magnitudes of whole tiles rather than of
// each output's own terms (see winograd_test.go), is no longer small beside the direct
// sum's.
func winogradOK(s ConvShape, weight bool) bool {
	if !useWinograd {
		return false
	}
	if !forceWinograd && (!ks.winograd || weight && !ks.winogradWeight) {
		return false
	}
	if s.K != [3]int{3, 3, 3} || s.Stride != [3]int{1, 1, 1} || s.Pad != [3]int{1, 1, 1} || s.Ci < 4 || s.Co < 4 {
		return false
	}
	if forceWinograd {
		return true
	}
	g := newWgGeom(s.In)
	return s.N*g.dt*g.ht*g.wt >= 64 && 2*g.wt >= wgLanes*g.wc
}

// wgGeom is the tiling of one volume extent.
type wgGeom struct {
	in                [3]int // D, H, W
	dt, ht, wt, wc    int    // tiles along D, H, W; 8-tile units along W
	l                 int    // length of an E or O row
	hp, row, plane, c int    // padded rows per plane, floats per row pair, per plane, per channel
	units             int    // units per sample
}

func newWgGeom(in [3]int) wgGeom {
	g := wgGeom{in: in}
	g.dt, g.ht, g.wt = (in[0]+1)/2, (in[1]+1)/2, (in[2]+1)/2
	g.wc = (g.wt + wgLanes - 1) / wgLanes
	g.l = wgLanes*g.wc + 1
	g.hp = 2*g.ht + 2
	g.row = 2 * g.l
	g.plane = g.hp * g.row
	g.c = (2*g.dt + 2) * g.plane
	g.units = g.dt * g.ht * g.wc
	return g
}

// wgPrep writes the even/odd split padded copy of x (n samples of c channels, extent
// g.in) into dst (n·c·g.c floats).
func wgPrep(dst, x []float32, n, c int, g wgGeom) {
	d, h, w := g.in[0], g.in[1], g.in[2]
	vol := d * h * w
	parallel(n*c, numWorkers(), func(_, ch int, _ *workspace) {
		out := dst[ch*g.c : (ch+1)*g.c]
		src := x[ch*vol : (ch+1)*vol]
		for zz := 0; zz < 2*g.dt+2; zz++ {
			z := zz - 1
			for yy := 0; yy < g.hp; yy++ {
				y := yy - 1
				r := out[zz*g.plane+yy*g.row : zz*g.plane+(yy+1)*g.row]
				if z < 0 || z >= d || y < 0 || y >= h {
					clear(r)
					continue
				}
				e, o := r[:g.l], r[g.l:]
				s := src[(z*h+y)*w : (z*h+y+1)*w]
				// xp[i] = x[i-1]: E[j] = x[2j-1], O[j] = x[2j].
				e[0] = 0
				for j := 1; j < g.l; j++ {
					if 2*j-1 < w {
						e[j] = s[2*j-1]
					} else {
						e[j] = 0
					}
				}
				for j := 0; j < g.l; j++ {
					if 2*j < w {
						o[j] = s[2*j]
					} else {
						o[j] = 0
					}
				}
			}
		}
	})
}

// wgUStride is the number of floats per transform position in the transformed weights
// of co output and ci input channels: whole panels of mr rows, padded by a cache line
// (see wgConv).
func wgUStride(co, ci, mr int) int { return (co+mr-1)/mr*mr*ci + 16 }

// wgWeights writes the transformed weights U[σ] as packed A panels of mr rows for the
// GEMM M[σ] (co × tiles) = U[σ] (co × ci) · V[σ] (ci × tiles): element (o, i) of U[σ]
// at u[σ·wgUStride + (o/mr)·ci·mr + i·mr + o%mr]; padding rows are zero. With flip, the
// weights are those of the input gradient: U from w'[o][i][k] = w[i][o][26−k] (w stored
// as (ci, co, 3,3,3) then, i.e. the forward's weight with roles swapped).
//
// With 8-row panels the kernel set's wgFilt transforms the 8 filters of a panel column
// (o = 8p…8p+7, one i) at once, from lanes gathered into g8, and stores them in place.
func wgWeights(u, w []float32, co, ci, mr int, flip bool) {
	coPad := (co + mr - 1) / mr * mr
	us := wgUStride(co, ci, mr)
	// at returns the index in w of tap k of filter (o, i).
	at := func(o, i, k int) int {
		if flip { // w is (ci, co, k) here: forward weight w[i][o], flipped
			return (i*co+o)*27 + 26 - k
		}
		return (o*ci+i)*27 + k
	}
	parallel(coPad/mr, numWorkers(), func(_, p int, _ *workspace) {
		if mr == 8 {
			var g8 [27 * 8]float32
			for i := range ci {
				for r := range 8 {
					o := p*8 + r
					if o >= co {
						for k := range 27 {
							g8[k*8+r] = 0
						}
						continue
					}
					if flip {
						src := (*[27]float32)(w[at(o, i, 26):])
						for k := range 27 {
							g8[k*8+r] = src[26-k]
						}
					} else {
						src := (*[27]float32)(w[at(o, i, 0):])
						for k := range 27 {
							g8[k*8+r] = src[k]
						}
					}
				}
				ks.wgFilt(&g8, u[p*ci*8+i*8:], us)
			}
			return
		}
		var g [27]float32
		var f [64]float32
		for r := range mr {
			o := p*mr + r
			for i := range ci {
				f = [64]float32{}
				if o < co {
					for k := range 27 {
						g[k] = w[at(o, i, k)]
					}
					wgFilter(&f, &g)
				}
				for xi := range 64 {
					u[xi*us+p*ci*mr+i*mr+r] = f[xi]
				}
			}
		}
	})
}

// wgFiltGo is kernelSet.wgFilt in Go: wgFilter for the 8 filters g8[k·8 + lane], the
// results at dst[σ·ds + lane].
func wgFiltGo(g8 *[27 * 8]float32, dst []float32, ds int) {
	var g [27]float32
	var f [64]float32
	for lane := range 8 {
		for k := range 27 {
			g[k] = g8[k*8+lane]
		}
		wgFilter(&f, &g)
		for xi := range 64 {
			dst[xi*ds+lane] = f[xi]
		}
	}
}

// wgFilter computes t = (G⊗G⊗G) g for one 3×3×3 kernel g (index (kd·3+kh)·3+kw) into
// t (index σ(ξ) = (ξw·4+ξh)·4+ξd, the storage order of every transform: it lets the
// input transform's stores and the output transform's loads walk memory in order).
func wgFilter(t *[64]float32, g *[27]float32) {
	f := func(a, b, c float32) (float32, float32, float32, float32) {
		return a, (a + b + c) * 0.5, (a - b + c) * 0.5, c
	}
	var s1 [3][3][4]float32 // along W
	for d := range 3 {
		for h := range 3 {
			r := g[(d*3+h)*3:]
			s1[d][h][0], s1[d][h][1], s1[d][h][2], s1[d][h][3] = f(r[0], r[1], r[2])
		}
	}
	var s2 [3][4][4]float32 // along H
	for d := range 3 {
		for xw := range 4 {
			s2[d][0][xw], s2[d][1][xw], s2[d][2][xw], s2[d][3][xw] = f(s1[d][0][xw], s1[d][1][xw], s1[d][2][xw])
		}
	}
	for xh := range 4 {
		for xw := range 4 {
			a, b, c, e := f(s2[0][xh][xw], s2[1][xh][xw], s2[2][xh][xw])
			t[(xw*4+xh)*4+0], t[(xw*4+xh)*4+1], t[(xw*4+xh)*4+2], t[(xw*4+xh)*4+3] = a, b, c, e
		}
	}
}

// wgInGo is kernelSet.wgIn in Go: the input transform of 8 tiles. src starts at E of the
// tiles' first row (z = 2td, y = 2th in padded coordinates, at lane 0); row pairs are
// g.row apart, planes g.plane; O rows start l after E rows. dst[σ·ds + lane] receives
// (Bᵀ⊗Bᵀ⊗Bᵀ) d at σ = (ξw·4+ξh)·4+ξd.
func wgInGo(src []float32, l, row, plane int, dst []float32, ds int) {
	for lane := range wgLanes {
		var t [4][4][4]float32
		for rd := range 4 {
			for rh := range 4 {
				r := src[rd*plane+rh*row+lane:]
				e0, e1, o0, o1 := r[0], r[1], r[l], r[l+1]
				t[rd][rh] = [4]float32{e0 - e1, o0 + e1, e1 - o0, o0 - o1}
			}
		}
		for rd := range 4 {
			for xw := range 4 {
				a0, a1, a2, a3 := t[rd][0][xw], t[rd][1][xw], t[rd][2][xw], t[rd][3][xw]
				t[rd][0][xw], t[rd][1][xw], t[rd][2][xw], t[rd][3][xw] = a0-a2, a1+a2, a2-a1, a1-a3
			}
		}
		for xh := range 4 {
			for xw := range 4 {
				a0, a1, a2, a3 := t[0][xh][xw], t[1][xh][xw], t[2][xh][xw], t[3][xh][xw]
				dst[((xw*4+xh)*4+0)*ds+lane] = a0 - a2
				dst[((xw*4+xh)*4+1)*ds+lane] = a1 + a2
				dst[((xw*4+xh)*4+2)*ds+lane] = a2 - a1
				dst[((xw*4+xh)*4+3)*ds+lane] = a1 - a3
			}
		}
	}
}

// wgOutGo is kernelSet.wgOut in Go: the output transform of 8 tiles. m[σ·ms + lane] are
// the GEMM results; out[(a·2+b)·16 + 2·lane + c] = (Aᵀ⊗Aᵀ⊗Aᵀ m)[a][b][c] + bias, i.e.
// output rows (z = 2td+a, y = 2th+b), 16 consecutive x.
func wgOutGo(m []float32, ms int, bias float32, out *[64]float32) {
	for lane := range wgLanes {
		var t [4][4][2]float32
		for xd := range 4 {
			for xh := range 4 {
				r := m[(xh*4+xd)*ms+lane:]
				m0, m1, m2, m3 := r[0], r[16*ms], r[32*ms], r[48*ms]
				t[xd][xh] = [2]float32{m0 + m1 + m2, m1 - m2 - m3}
			}
		}
		var s [4][2][2]float32
		for xd := range 4 {
			for c := range 2 {
				m0, m1, m2, m3 := t[xd][0][c], t[xd][1][c], t[xd][2][c], t[xd][3][c]
				s[xd][0][c], s[xd][1][c] = m0+m1+m2, m1-m2-m3
			}
		}
		for b := range 2 {
			for c := range 2 {
				m0, m1, m2, m3 := s[0][b][c], s[1][b][c], s[2][b][c], s[3][b][c]
				out[(0*2+b)*16+2*lane+c] = m0 + m1 + m2 + bias
				out[(1*2+b)*16+2*lane+c] = m1 - m2 - m3 + bias
			}
		}
	}
}

// wgConv computes y (n, co, in…) = conv3×3×3(x (n, ci, in…)) + bias with transformed
// weights u (from wgWeights with the same co, ci and ks.mr); bias may be nil.
func wgConv(x, u, bias, y []float32, n, ci, co int, in [3]int) {
	g := newWgGeom(in)
	mr, nr := ks.mr, ks.nr
	upp := nr / wgLanes // units per panel
	coPad := (co + mr - 1) / mr * mr
	prepP := getBuf(n * ci * g.c)
	defer putBuf(prepP)
	prep := *prepP
	wgPrep(prep, x, n, ci, g)
	totalUnits := n * g.units
	panels := (totalUnits + upp - 1) / upp
	d, h, w := in[0], in[1], in[2]
	vol := d * h * w
	// Floats per σ in V and in M, padded by one cache line: at a power-of-two stride the
	// transforms' 64 accesses per call would all fall into the same cache sets.
	vs, ms := ci*nr+16, coPad*nr+16
	us := wgUStride(co, ci, mr)
	// Per-worker scratch taken once for all workers, from the size-class pool rather than
	// the workspaces: workspaces rotate between callers and roles and would keep
	// regrowing, and per-chunk buffers would depend on how many workers happen to run at
	// once; either way an allocation now and then in steady state.
	workers := numWorkers()
	per := 64*(vs+ms) + 64
	sp := getBuf(workers * per)
	defer putBuf(sp)
	parallel(panels, workers, func(wi, p int, _ *workspace) {
		buf := (*sp)[wi*per : (wi+1)*per]
		v, m := buf[:64*vs], buf[64*vs:64*(vs+ms)]
		out := (*[64]float32)(buf[64*(vs+ms):])
		u0 := p * upp
		nu := min(upp, totalUnits-u0)
		if nu < upp {
			clear(v)
		}
		for q := range nu {
			sn, td, th, wc := wgUnit(u0+q, g)
			base := (2*td)*g.plane + (2*th)*g.row + wc*wgLanes
			for c := range ci {
				src := prep[(sn*ci+c)*g.c+base:]
				ks.wgIn(src, g.l, g.row, g.plane, v[c*nr+q*wgLanes:], vs)
			}
		}
		for xi := range 64 {
			ua := u[xi*us:]
			vb := v[xi*vs : (xi+1)*vs]
			mc := m[xi*ms:]
			for o := 0; o < co; o += mr {
				ks.micro(min(mr, co-o), ci, ua[(o/mr)*ci*mr:], vb, mc[o*nr:], nr, false)
			}
		}
		for q := range nu {
			sn, td, th, wc := wgUnit(u0+q, g)
			x0 := wc * 2 * wgLanes
			nx := min(2*wgLanes, w-x0)
			for o := range co {
				var b float32
				if bias != nil {
					b = bias[o]
				}
				ks.wgOut(m[o*nr+q*wgLanes:], ms, b, out)
				yo := y[(sn*co+o)*vol:]
				for a := range 2 {
					z := 2*td + a
					if z >= d {
						break
					}
					for bb := range 2 {
						yy := 2*th + bb
						if yy >= h {
							break
						}
						copy(yo[(z*h+yy)*w+x0:(z*h+yy)*w+x0+nx], out[(a*2+bb)*16:])
					}
				}
			}
		}
	})
}

// wgUnit splits a unit index into sample, tile row (td, th) and 8-tile group along W.
func wgUnit(i int, g wgGeom) (n, td, th, wc int) {
	wc = i % g.wc
	i /= g.wc
	th = i % g.ht
	i /= g.ht
	td = i % g.dt
	return i / g.dt, td, th, wc
}

// winogradForward is Conv3dForward for shapes winogradOK accepts.
func winogradForward(x, w, bias, y []float32, s ConvShape) {
	up := getBuf(64 * wgUStride(s.Co, s.Ci, ks.mr))
	defer putBuf(up)
	wgWeights(*up, w, s.Co, s.Ci, ks.mr, false)
	wgConv(x, *up, bias, y, s.N, s.Ci, s.Co, s.In)
}

// winogradBackwardData is Conv3dBackwardData for shapes winogradOK accepts: the forward
// with flipped, transposed weights from dy (co channels) to dx (ci channels).
func winogradBackwardData(dy, w, dx []float32, s ConvShape) {
	up := getBuf(64 * wgUStride(s.Ci, s.Co, ks.mr))
	defer putBuf(up)
	wgWeights(*up, w, s.Ci, s.Co, ks.mr, true)
	wgConv(dy, *up, nil, dx, s.N, s.Co, s.Ci, s.In)
}

// The weight gradient. By linearity of y = Aᵀ[(G g) ⊙ (Bᵀ d)]A per tile,
//
//	∂L/∂g = Gᵀ [ Σ_tiles (A ∂L/∂y) ⊙ (Bᵀ d) ] G,
//
// so per transform position σ the reduction over tiles is a GEMM dU[σ] (co × ci) =
// Σ_t D[σ][t][co]·V[σ][t][ci], with V the forward's input transform and D the transform
// of dy's 2×2×2 tiles by A = ((1,0), (1,1), (1,−1), (0,−1)). The transforms come out
// with tiles in lanes; wgT8 turns 8 channels × 8 tiles around so that both operands land
// as packed micro-panels (D as A panels of 8 rows, V as B panels of 32 columns), and the
// outer-product micro-kernel accumulates a chunk of tiles into dU held in memory.

// Panel shape of the weight gradient's GEMM (the AVX-512 micro-kernel's); kernel sets
// with another shape run wgMicroGo on the same layout.
const wgMR, wgNR = 8, 32

// wgChunkTiles is the number of tiles per chunk: a task's transforms of a chunk
// (64·(32+co)·32 floats, 768 KiB at 64 channels) stay in L2 while the micro-kernel's
// reduction (32 k steps per call) stays long enough.
const wgChunkTiles = 32

// dyRow, dyPlane and dyChan are the strides (floats per row, plane and channel) of dy's
// even/odd split rows: per row (z, y) of the tile-padded extent (2·dt × 2·ht), E[j] =
// dy[2j] then O[j] = dy[2j+1], j < 8·wc.
func (g wgGeom) dyRow() int   { return 2 * wgLanes * g.wc }
func (g wgGeom) dyPlane() int { return 2 * g.ht * g.dyRow() }
func (g wgGeom) dyChan() int  { return 2 * g.dt * g.dyPlane() }

// wgPrepDy writes dy (n samples of c channels, extent g.in) as even/odd split rows.
func wgPrepDy(dst, dy []float32, n, c int, g wgGeom) {
	d, h, w := g.in[0], g.in[1], g.in[2]
	vol := d * h * w
	l := wgLanes * g.wc
	row, plane, size := g.dyRow(), g.dyPlane(), g.dyChan()
	parallel(n*c, numWorkers(), func(_, ch int, _ *workspace) {
		out := dst[ch*size : (ch+1)*size]
		src := dy[ch*vol : (ch+1)*vol]
		for z := range 2 * g.dt {
			for y := range 2 * g.ht {
				r := out[z*plane+y*row : z*plane+(y+1)*row]
				if z >= d || y >= h {
					clear(r)
					continue
				}
				e, o := r[:l], r[l:]
				s := src[(z*h+y)*w : (z*h+y+1)*w]
				for j := range l {
					e[j], o[j] = 0, 0
					if 2*j < w {
						e[j] = s[2*j]
					}
					if 2*j+1 < w {
						o[j] = s[2*j+1]
					}
				}
			}
		}
	})
}

// wgDyGo is kernelSet.wgDy in Go: the transform (A⊗A⊗A) of 8 tiles of dy. src starts
// at E of the tiles' first row; rows are row apart, planes plane, O rows l after E.
// dst[σ·ds + lane] receives the value at σ = (ξw·4+ξh)·4+ξd.
func wgDyGo(src []float32, l, row, plane int, dst []float32, ds int) {
	a := func(v0, v1 float32) [4]float32 { return [4]float32{v0, v0 + v1, v0 - v1, 0 - v1} }
	for lane := range wgLanes {
		var t [2][2][4]float32
		for zd := range 2 {
			for zh := range 2 {
				r := src[zd*plane+zh*row+lane:]
				t[zd][zh] = a(r[0], r[l])
			}
		}
		for xw := range 4 {
			h0, h1 := a(t[0][0][xw], t[0][1][xw]), a(t[1][0][xw], t[1][1][xw])
			for xh := range 4 {
				v := a(h0[xh], h1[xh])
				for xd := range 4 {
					dst[((xw*4+xh)*4+xd)*ds+lane] = v[xd]
				}
			}
		}
	}
}

// wgT8Go is kernelSet.wgT8 in Go: for σ < 64, the 8×8 block src[c·512 + σ·8 + j]
// (channel c, tile j) is stored transposed at dst[σ·dsig + j·dt + c].
func wgT8Go(src, dst []float32, dsig, dt int) {
	for xi := range 64 {
		for j := range 8 {
			d := dst[xi*dsig+j*dt : xi*dsig+j*dt+8]
			for c := range 8 {
				d[c] = src[c*512+xi*8+j]
			}
		}
	}
}

// wgMicroGo is the 8×32 micro-kernel contract (kernelSet.micro with mr = 8, nr = 32) in
// Go, for kernel sets of another panel shape.
func wgMicroGo(h, kc int, a, b, c []float32, ldc int, acc bool) {
	for i := range h {
		var t [wgNR]float32
		for k := range kc {
			ai := a[k*wgMR+i]
			for j, bv := range b[k*wgNR : k*wgNR+wgNR] {
				t[j] += ai * bv
			}
		}
		row := c[i*ldc : i*ldc+wgNR]
		for j := range row {
			if acc {
				row[j] += t[j]
			} else {
				row[j] = t[j]
			}
		}
	}
}

// wgFilterGrad computes g = (Gᵀ⊗Gᵀ⊗Gᵀ) t for t at σ order into g (index (kd·3+kh)·3+kw),
// Gᵀ rows (1, ½, ½, 0), (0, ½, −½, 0), (0, ½, ½, 1).
func wgFilterGrad(g *[27]float32, t *[64]float32) {
	f := func(u0, u1, u2, u3 float32) (float32, float32, float32) {
		return u0 + (u1+u2)*0.5, (u1 - u2) * 0.5, (u1+u2)*0.5 + u3
	}
	var s1 [4][4][3]float32 // [ξw][ξh][kd]
	for xw := range 4 {
		for xh := range 4 {
			r := t[(xw*4+xh)*4:]
			s1[xw][xh][0], s1[xw][xh][1], s1[xw][xh][2] = f(r[0], r[1], r[2], r[3])
		}
	}
	var s2 [4][3][3]float32 // [ξw][kd][kh]
	for xw := range 4 {
		for kd := range 3 {
			s2[xw][kd][0], s2[xw][kd][1], s2[xw][kd][2] = f(s1[xw][0][kd], s1[xw][1][kd], s1[xw][2][kd], s1[xw][3][kd])
		}
	}
	for kd := range 3 {
		for kh := range 3 {
			g[(kd*3+kh)*3], g[(kd*3+kh)*3+1], g[(kd*3+kh)*3+2] = f(s2[0][kd][kh], s2[1][kd][kh], s2[2][kd][kh], s2[3][kd][kh])
		}
	}
}

// winogradBackwardWeight is Conv3dBackwardWeight for shapes winogradOK accepts.
func winogradBackwardWeight(x, dy, dw, db []float32, s ConvShape) {
	g := newWgGeom(s.In)
	n, ci, co := s.N, s.Ci, s.Co
	micro := ks.micro
	if ks.mr != wgMR || ks.nr != wgNR {
		micro = wgMicroGo
	}
	ciPad := (ci + wgNR - 1) / wgNR * wgNR // B columns: V
	coPad := (co + wgMR - 1) / wgMR * wgMR // A rows: D
	const T = wgChunkTiles
	us := coPad*ciPad + 16 // floats per σ of dU, padded by a cache line (see wgConv)
	// Three pooled buffers rather than one: each rounds up to a power of two on its own.
	dRow, dPlane, dChan := g.dyRow(), g.dyPlane(), g.dyChan()
	pX, pDy, pU := getBuf(n*ci*g.c), getBuf(n*co*dChan), getBuf(64*us)
	defer putBuf(pX)
	defer putBuf(pDy)
	defer putBuf(pU)
	prepX, prepDy, du := *pX, *pDy, *pU
	clear(du)
	wgPrep(prepX, x, n, ci, g)
	wgPrepDy(prepDy, dy, n, co, g)
	// One task per (B panel of 32 input channels, group of output channels): it walks
	// all tiles in chunks, transforming only its channels, and owns its block of dU, so
	// tasks need no synchronisation (a barrier per chunk cost more than the GEMM on
	// 2 cores) and each dU element sums its chunks in order on any number of workers.
	nb := ciPad / wgNR
	groups := max(1, min((numWorkers()+nb-1)/nb, coPad/wgMR))
	per := (coPad/wgMR + groups - 1) / groups * wgMR
	total := n * g.units
	const upc = T / wgLanes // units per chunk
	// Floats per σ of a task's chunk transforms (padded as us), and per-worker scratch
	// taken once (see wgConv).
	vs, ds := wgNR*T+16, per*T+16
	workers := numWorkers()
	size := 64*(vs+ds) + 8*512
	sp := getBuf(workers * size)
	defer putBuf(sp)
	parallel(nb*groups, workers, func(wi, task int, _ *workspace) {
		b, o0 := task%nb, task/nb*per
		o1 := min(co, o0+per)
		if o0 >= o1 {
			return
		}
		rows := (o1 - o0 + wgMR - 1) / wgMR * wgMR
		buf := (*sp)[wi*size : (wi+1)*size]
		v, d, tmp := buf[:64*vs], buf[64*vs:64*(vs+ds)], buf[64*(vs+ds):]
		for u0 := 0; u0 < total; u0 += upc {
			nu := min(upc, total-u0)
			for q := range nu {
				sn, td, th, wc := wgUnit(u0+q, g)
				base := (2*td)*g.plane + (2*th)*g.row + wc*wgLanes
				for cg := range wgNR / 8 {
					for c := range 8 {
						if ch := b*wgNR + cg*8 + c; ch < ci {
							ks.wgIn(prepX[(sn*ci+ch)*g.c+base:], g.l, g.row, g.plane, tmp[c*512:], wgLanes)
						} else {
							clear(tmp[c*512 : (c+1)*512])
						}
					}
					ks.wgT8(tmp, v[q*wgLanes*wgNR+cg*8:], vs, wgNR)
				}
				base = (2*td)*dPlane + (2*th)*dRow + wc*wgLanes
				for r := 0; r < rows; r += 8 {
					for c := range 8 {
						if ch := o0 + r + c; ch < o1 {
							ks.wgDy(prepDy[(sn*co+ch)*dChan+base:], wgLanes*g.wc, dRow, dPlane, tmp[c*512:], wgLanes)
						} else {
							clear(tmp[c*512 : (c+1)*512])
						}
					}
					ks.wgT8(tmp, d[(r/wgMR)*T*wgMR+q*wgLanes*wgMR:], ds, wgMR)
				}
			}
			kc := nu * wgLanes
			for xi := range 64 {
				for o := o0; o < o1; o += wgMR {
					micro(min(wgMR, o1-o), kc, d[xi*ds+((o-o0)/wgMR)*T*wgMR:], v[xi*vs:], du[xi*us+o*ciPad+b*wgNR:], ciPad, true)
				}
			}
		}
	})
	// dw[o][i] = Gᵀ⊗Gᵀ⊗Gᵀ dU[·][o][i].
	parallel(co, numWorkers(), func(_, o int, _ *workspace) {
		var t [64]float32
		var k [27]float32
		for i := range ci {
			for xi := range 64 {
				t[xi] = du[xi*us+o*ciPad+i]
			}
			wgFilterGrad(&k, &t)
			copy(dw[(o*ci+i)*27:(o*ci+i+1)*27], k[:])
		}
	})
	if db != nil {
		biasGrad(dy, db, n, co, s.outSize())
	}
}
