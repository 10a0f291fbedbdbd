package devicetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/latentad/latentad/compute"
)

// convCase is one convolution geometry: x (N, Ci, In…), w (Co, Ci, K…).
type convCase struct {
	N, Ci, Co int
	In, K     [3]int
	P         compute.Conv
}

func iso(v int) [3]int { return [3]int{v, v, v} }

func convP(s, p int) compute.Conv { return compute.Conv{Stride: iso(s), Pad: iso(p)} }

// convCases: kernels 1, 3, 4; strides 1 and 2; paddings 0, 1, 2; batch 1, 2, 3; odd and
// unequal extents; channel counts 1–16 that are mostly not multiples of 8; the autoencoder's
// k4/s2/p1 with both even extents (transposed output size matches) and odd ones (the dx
// extent decides); an anisotropic case so D, H and W are never confused; a kernel larger
// than the unpadded input; and wide rows and the model's 64 channels. The default cases
// cost about 3·10⁷ multiply-adds on the device.
func convCases(o Options) []convCase {
	if o.Small {
		return []convCase{
			{N: 3, Ci: 5, Co: 3, In: [3]int{3, 5, 7}, K: iso(3), P: convP(1, 1)},
			{N: 1, Ci: 3, Co: 5, In: [3]int{5, 7, 9}, K: iso(4), P: convP(2, 1)},
			{N: 2, Ci: 3, Co: 4, In: [3]int{4, 5, 6}, K: [3]int{1, 3, 4},
				P: compute.Conv{Stride: [3]int{1, 2, 1}, Pad: [3]int{0, 1, 2}}},
		}
	}
	return []convCase{
		{N: 1, Ci: 3, Co: 5, In: [3]int{3, 5, 7}, K: iso(3), P: convP(1, 1)},
		{N: 3, Ci: 5, Co: 12, In: [3]int{5, 6, 7}, K: iso(3), P: convP(1, 1)},
		{N: 2, Ci: 16, Co: 16, In: [3]int{4, 6, 8}, K: iso(3), P: convP(1, 1)},
		{N: 2, Ci: 3, Co: 5, In: [3]int{4, 6, 8}, K: iso(4), P: convP(2, 1)},
		{N: 1, Ci: 5, Co: 3, In: [3]int{5, 7, 9}, K: iso(4), P: convP(2, 1)},
		{N: 3, Ci: 12, Co: 5, In: [3]int{3, 5, 7}, K: iso(1), P: convP(1, 0)},
		{N: 1, Ci: 4, Co: 3, In: [3]int{5, 5, 7}, K: iso(3), P: convP(2, 0)},
		{N: 1, Ci: 1, Co: 16, In: [3]int{6, 8, 10}, K: iso(3), P: convP(1, 1)},
		{N: 2, Ci: 16, Co: 1, In: [3]int{3, 4, 5}, K: iso(3), P: convP(1, 1)},
		{N: 1, Ci: 2, Co: 3, In: [3]int{1, 2, 3}, K: iso(3), P: convP(1, 2)},
		{N: 2, Ci: 3, Co: 4, In: [3]int{4, 5, 6}, K: [3]int{1, 3, 4},
			P: compute.Conv{Stride: [3]int{1, 2, 1}, Pad: [3]int{0, 1, 2}}},
		// Wide rows and many channels, past the tile sizes a GPU kernel may block by.
		{N: 1, Ci: 2, Co: 3, In: [3]int{3, 9, 40}, K: iso(3), P: convP(1, 1)},
		{N: 1, Ci: 3, Co: 2, In: [3]int{4, 6, 34}, K: iso(4), P: convP(2, 1)},
		{N: 1, Ci: 64, Co: 64, In: [3]int{2, 3, 4}, K: iso(3), P: convP(1, 1)},
	}
}

func (c convCase) out() [3]int {
	var o [3]int
	for a := range 3 {
		o[a] = compute.OutSize(c.In[a], c.K[a], c.P.Stride[a], c.P.Pad[a])
	}
	return o
}

func (c convCase) String() string {
	return fmt.Sprintf("N%d_Ci%d_Co%d_in%s_k%s_s%s_p%s", c.N, c.Ci, c.Co,
		shapeName(c.In[:]...), shapeName(c.K[:]...), shapeName(c.P.Stride[:]...), shapeName(c.P.Pad[:]...))
}

// tapList lists every (output position, kernel tap, input position) triple, as flat
// indices, whose input position lies inside x: the definition of the convolution, shared
// by the three references.
func (c convCase) tapList() []tapIdx {
	out := c.out()
	var list []tapIdx
	var o, k, i [3]int
	for o[0] = 0; o[0] < out[0]; o[0]++ {
		for o[1] = 0; o[1] < out[1]; o[1]++ {
			for o[2] = 0; o[2] < out[2]; o[2]++ {
				for k[0] = 0; k[0] < c.K[0]; k[0]++ {
					for k[1] = 0; k[1] < c.K[1]; k[1]++ {
						for k[2] = 0; k[2] < c.K[2]; k[2]++ {
							inside := true
							for a := range 3 {
								i[a] = o[a]*c.P.Stride[a] - c.P.Pad[a] + k[a]
								inside = inside && i[a] >= 0 && i[a] < c.In[a]
							}
							if inside {
								list = append(list, tapIdx{idx3(o, out), idx3(k, c.K), idx3(i, c.In)})
							}
						}
					}
				}
			}
		}
	}
	return list
}

type tapIdx struct{ o, k, i int }

func idx3(p, ext [3]int) int { return (p[0]*ext[1]+p[1])*ext[2] + p[2] }

func testConv(t *testing.T, dev compute.Device, o Options) {
	for _, c := range convCases(o) {
		out := c.out()
		inSz, outSz, kSz := c.In[0]*c.In[1]*c.In[2], out[0]*out[1]*out[2], c.K[0]*c.K[1]*c.K[2]
		xShape := []int{c.N, c.Ci, c.In[0], c.In[1], c.In[2]}
		wShape := []int{c.Co, c.Ci, c.K[0], c.K[1], c.K[2]}
		yShape := []int{c.N, c.Co, out[0], out[1], out[2]}
		taps := c.tapList()
		// Flat indices of x[n,ci,i], y[n,co,o] and w[co,ci,k].
		xAt := func(n, ci, i int) int { return (n*c.Ci+ci)*inSz + i }
		yAt := func(n, co, o int) int { return (n*c.Co+co)*outSz + o }
		wAt := func(co, ci, k int) int { return (co*c.Ci+ci)*kSz + k }

		for _, withBias := range []bool{true, false} {
			name := "forward/" + c.String()
			if !withBias {
				name += "/nobias"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, dev)
				xs, ws := e.normal(c.N*c.Ci*inSz, 1, 0), e.normal(c.Co*c.Ci*kSz, 1, 0)
				var bs []float32
				var bias *compute.Tensor
				want, mag := make([]float64, c.N*c.Co*outSz), make([]float64, c.N*c.Co*outSz)
				x, w := e.in("x", xs, xShape...), e.in("w", ws, wShape...)
				if withBias {
					bs = e.normal(c.Co, 1, 0)
					bias = e.in("bias", bs, c.Co)
				}
				for n := range c.N {
					for co := range c.Co {
						if withBias {
							for j := range outSz {
								want[yAt(n, co, j)] = float64(bs[co])
								mag[yAt(n, co, j)] = math.Abs(float64(bs[co]))
							}
						}
						for ci := range c.Ci {
							for _, tp := range taps {
								v := float64(ws[wAt(co, ci, tp.k)]) * float64(xs[xAt(n, ci, tp.i)])
								want[yAt(n, co, tp.o)] += v
								mag[yAt(n, co, tp.o)] += math.Abs(v)
							}
						}
					}
				}
				y := e.out("y", yShape...)
				dev.Conv3d(x, w, bias, y, c.P)
				e.check("Conv3d", e.get(y), want, mag, sumTol(c.Ci*kSz+1))
				e.verify()
			})
		}

		t.Run("backward-data/"+c.String(), func(t *testing.T) {
			e := newEnv(t, dev)
			dys, ws := e.normal(c.N*c.Co*outSz, 1, 0), e.normal(c.Co*c.Ci*kSz, 1, 0)
			want, mag := make([]float64, c.N*c.Ci*inSz), make([]float64, c.N*c.Ci*inSz)
			for n := range c.N {
				for co := range c.Co {
					for ci := range c.Ci {
						for _, tp := range taps {
							v := float64(ws[wAt(co, ci, tp.k)]) * float64(dys[yAt(n, co, tp.o)])
							want[xAt(n, ci, tp.i)] += v
							mag[xAt(n, ci, tp.i)] += math.Abs(v)
						}
					}
				}
			}
			dy, w := e.in("dy", dys, yShape...), e.in("w", ws, wShape...)
			dx := e.out("dx", xShape...)
			dev.Conv3dBackwardData(dy, w, dx, c.P)
			e.check("Conv3dBackwardData", e.get(dx), want, mag, sumTol(c.Co*kSz))
			e.verify()
		})

		for _, withBias := range []bool{true, false} {
			name := "backward-weight/" + c.String()
			if !withBias {
				name += "/nodb"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, dev)
				xs, dys := e.normal(c.N*c.Ci*inSz, 1, 0), e.normal(c.N*c.Co*outSz, 1, 0)
				want, mag := make([]float64, c.Co*c.Ci*kSz), make([]float64, c.Co*c.Ci*kSz)
				wantB, magB := make([]float64, c.Co), make([]float64, c.Co)
				for n := range c.N {
					for co := range c.Co {
						for j := range outSz {
							v := float64(dys[yAt(n, co, j)])
							wantB[co] += v
							magB[co] += math.Abs(v)
						}
						for ci := range c.Ci {
							for _, tp := range taps {
								v := float64(dys[yAt(n, co, tp.o)]) * float64(xs[xAt(n, ci, tp.i)])
								want[wAt(co, ci, tp.k)] += v
								mag[wAt(co, ci, tp.k)] += math.Abs(v)
							}
						}
					}
				}
				x, dy := e.in("x", xs, xShape...), e.in("dy", dys, yShape...)
				dw := e.out("dw", wShape...)
				var db *compute.Tensor
				if withBias {
					db = e.out("db", c.Co)
				}
				dev.Conv3dBackwardWeight(x, dy, dw, db, c.P)
				e.check("Conv3dBackwardWeight dw", e.get(dw), want, mag, sumTol(c.N*outSz))
				if withBias {
					e.check("Conv3dBackwardWeight db", e.get(db), wantB, magB, sumTol(c.N*outSz))
				}
				e.verify()
			})
		}
	}

	// ConvTranspose3d(Cin→Cout, k4, s2, p1) as the decoder runs it: its input plays dy,
	// its weight (Cin, Cout, k…) plays w, and the output extent is TransposedOutSize.
	t.Run("transposed/decoder-step", func(t *testing.T) {
		e := newEnv(t, dev)
		N, Cin, Cout, K, S, P := 2, 6, 3, 4, 2, 1
		in := [3]int{2, 3, 4}
		var outE [3]int
		for a := range 3 {
			outE[a] = compute.TransposedOutSize(in[a], K, S, P)
		}
		inSz, outSz := in[0]*in[1]*in[2], outE[0]*outE[1]*outE[2]
		xs, ws := e.normal(N*Cin*inSz, 1, 0), e.normal(Cin*Cout*K*K*K, 1, 0)
		// ConvTranspose3d's own definition: y[n,co,i·s-p+k] += x[n,ci,i]·w[ci,co,k].
		want, mag := make([]float64, N*Cout*outSz), make([]float64, N*Cout*outSz)
		for n := range N {
			for ci := range Cin {
				for co := range Cout {
					var i, k, q [3]int
					for i[0] = 0; i[0] < in[0]; i[0]++ {
						for i[1] = 0; i[1] < in[1]; i[1]++ {
							for i[2] = 0; i[2] < in[2]; i[2]++ {
								for k[0] = 0; k[0] < K; k[0]++ {
									for k[1] = 0; k[1] < K; k[1]++ {
										for k[2] = 0; k[2] < K; k[2]++ {
											ok := true
											for a := range 3 {
												q[a] = i[a]*S - P + k[a]
												ok = ok && q[a] >= 0 && q[a] < outE[a]
											}
											if !ok {
												continue
											}
											v := float64(xs[(n*Cin+ci)*inSz+idx3(i, in)]) *
												float64(ws[(ci*Cout+co)*K*K*K+idx3(k, iso(K))])
											want[(n*Cout+co)*outSz+idx3(q, outE)] += v
											mag[(n*Cout+co)*outSz+idx3(q, outE)] += math.Abs(v)
										}
									}
								}
							}
						}
					}
				}
			}
		}
		x := e.in("x", xs, N, Cin, in[0], in[1], in[2])
		w := e.in("w", ws, Cin, Cout, K, K, K)
		y := e.out("y", N, Cout, outE[0], outE[1], outE[2])
		dev.Conv3dBackwardData(x, w, y, convP(S, P))
		e.check("ConvTranspose3d", e.get(y), want, mag, sumTol(Cin*K*K*K))
		e.verify()
	})
}
