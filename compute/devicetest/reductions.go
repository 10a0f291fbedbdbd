package devicetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/latentad/latentad/compute"
)

// ncShapes are (N, C, spatial…) shapes for the per-channel and per-sample ops: batch 1 and
// 3, odd extents, channel counts that are not multiples of 8, a 2-D (N, C) case with no
// spatial extent, and the model's (4, 64, 8, 16, 16) which a CPU backend splits over cores.
func ncShapes(o Options) [][]int {
	if o.Small {
		return [][]int{{3, 5, 2, 3, 7}, {2, 12}}
	}
	return [][]int{{1, 1, 1, 1, 1}, {3, 5, 2, 3, 7}, {1, 12, 3, 5, 7}, {2, 12}, {3, 5, 11}, {4, 64, 8, 16, 16}}
}

func split(shape []int) (n, c, sp int) {
	n, c = shape[0], shape[1]
	return n, c, compute.Numel(shape) / (n * c)
}

func testBroadcast(t *testing.T, dev compute.Device, o Options) {
	for _, shape := range ncShapes(o) {
		n, c, sp := split(shape)
		t.Run("AddBias/"+shapeName(shape...), func(t *testing.T) {
			e := newEnv(t, dev)
			xs, bs := e.normal(n*c*sp, 1, 0), e.normal(c, 1, 0)
			want, mag := make([]float64, len(xs)), make([]float64, len(xs))
			for i := range n {
				for ch := range c {
					for s := range sp {
						k := (i*c+ch)*sp + s
						want[k] = float64(xs[k]) + float64(bs[ch])
						mag[k] = math.Abs(float64(xs[k])) + math.Abs(float64(bs[ch]))
					}
				}
			}
			x := e.inout("x", xs, shape...)
			dev.AddBias(x, e.in("b", bs, c))
			e.check("AddBias", e.get(x), want, mag, 1.5*u) // one rounding
			e.verify()
		})
		t.Run("AddSampleBias/"+shapeName(shape...), func(t *testing.T) {
			e := newEnv(t, dev)
			xs, bs := e.normal(n*c*sp, 1, 0), e.normal(n*c, 1, 0)
			want, mag := make([]float64, len(xs)), make([]float64, len(xs))
			for i := range n {
				for ch := range c {
					for s := range sp {
						k := (i*c+ch)*sp + s
						want[k] = float64(xs[k]) + float64(bs[i*c+ch])
						mag[k] = math.Abs(float64(xs[k])) + math.Abs(float64(bs[i*c+ch]))
					}
				}
			}
			x := e.inout("x", xs, shape...)
			dev.AddSampleBias(x, e.in("b", bs, n, c))
			e.check("AddSampleBias", e.get(x), want, mag, 1.5*u)
			e.verify()
		})
	}
}

func testReductions(t *testing.T, dev compute.Device, o Options) {
	for _, shape := range ncShapes(o) {
		n, c, sp := split(shape)
		// Shifted data: sums whose terms share a sign are where float32 accumulation errors
		// grow fastest.
		for _, shift := range []float64{0, 2} {
			name := fmt.Sprintf("%s/mean%g", shapeName(shape...), shift)
			t.Run("SumChannels/"+name, func(t *testing.T) {
				e := newEnv(t, dev)
				xs := e.normal(n*c*sp, 1, shift)
				want, mag := make([]float64, c), make([]float64, c)
				for i := range n {
					for ch := range c {
						for s := range sp {
							v := float64(xs[(i*c+ch)*sp+s])
							want[ch] += v
							mag[ch] += math.Abs(v)
						}
					}
				}
				out := e.out("out", c)
				dev.SumChannels(e.in("x", xs, shape...), out)
				e.check("SumChannels", e.get(out), want, mag, sumTol(n*sp))
				e.verify()
			})
			t.Run("SumSpatial/"+name, func(t *testing.T) {
				e := newEnv(t, dev)
				xs := e.normal(n*c*sp, 1, shift)
				want, mag := make([]float64, n*c), make([]float64, n*c)
				for r := range n * c {
					for s := range sp {
						v := float64(xs[r*sp+s])
						want[r] += v
						mag[r] += math.Abs(v)
					}
				}
				out := e.out("out", n, c)
				dev.SumSpatial(e.in("x", xs, shape...), out)
				e.check("SumSpatial", e.get(out), want, mag, sumTol(sp))
				e.verify()
			})
			t.Run("MeanSample/"+name, func(t *testing.T) {
				e := newEnv(t, dev)
				xs := e.normal(n*c*sp, 1, shift)
				per := c * sp
				want, mag := make([]float64, n), make([]float64, n)
				for i := range n {
					for k := range per {
						v := float64(xs[i*per+k])
						want[i] += v / float64(per)
						mag[i] += math.Abs(v) / float64(per)
					}
				}
				out := e.out("out", n)
				dev.MeanSample(e.in("x", xs, shape...), out)
				e.check("MeanSample", e.get(out), want, mag, sumTol(per)+u)
				e.verify()
			})
			t.Run("MeanChannels/"+name, func(t *testing.T) {
				e := newEnv(t, dev)
				xs := e.normal(n*c*sp, 1, shift)
				want, mag := make([]float64, n*sp), make([]float64, n*sp)
				for i := range n {
					for ch := range c {
						for s := range sp {
							v := float64(xs[(i*c+ch)*sp+s])
							want[i*sp+s] += v / float64(c)
							mag[i*sp+s] += math.Abs(v) / float64(c)
						}
					}
				}
				oshape := append([]int{n, 1}, shape[2:]...)
				out := e.out("out", oshape...)
				dev.MeanChannels(e.in("x", xs, shape...), out)
				e.check("MeanChannels", e.get(out), want, mag, sumTol(c)+u)
				e.verify()
			})
		}
	}
}

// testWelford feeds K samples one at a time and compares the running mean and M2/(K-1)
// with the two-pass float64 mean and unbiased variance.
func testWelford(t *testing.T, dev compute.Device, o Options) {
	type tc struct {
		n, K  int
		shift float64
	}
	cases := []tc{{1, 2, 0}, {1001, 3, 0}, {1001, 10, 3}, {150001, 5, 0}, {257, 20, 100}}
	if o.Small {
		cases = []tc{{1001, 3, 0}, {257, 10, 100}}
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d/K%d/mean%g", c.n, c.K, c.shift), func(t *testing.T) {
			e := newEnv(t, dev)
			samples := make([][]float32, c.K)
			for k := range samples {
				samples[k] = e.normal(c.n, 1, c.shift)
			}
			zeros := make([]float32, c.n)
			mean, m2 := e.inout("mean", zeros, c.n), e.inout("m2", zeros, c.n)
			for k, s := range samples {
				x := e.in(fmt.Sprintf("x%d", k+1), s, c.n)
				dev.Welford(x, mean, m2, k+1)
			}
			wantMean, wantVar := make([]float64, c.n), make([]float64, c.n)
			magMean, magVar := make([]float64, c.n), make([]float64, c.n)
			for i := range c.n {
				var s, sa float64
				for _, smp := range samples {
					s += float64(smp[i])
					sa += math.Abs(float64(smp[i]))
				}
				mu := s / float64(c.K)
				var ss, sq float64
				for _, smp := range samples {
					d := float64(smp[i]) - mu
					ss += d * d
					sq += float64(smp[i]) * float64(smp[i])
				}
				wantMean[i], magMean[i] = mu, sa/float64(c.K)
				wantVar[i] = ss / float64(c.K-1)
				// Each update rounds the mean (relative u of the data) and adds a product of
				// deviations whose factors carry the mean's rounding: errors scale with Σx²,
				// not with the (possibly much smaller) variance.
				magVar[i] = sq / float64(c.K-1)
			}
			m2s := e.get(m2)
			gotVar := make([]float32, c.n)
			for i, v := range m2s {
				gotVar[i] = float32(float64(v) / float64(c.K-1))
			}
			// K updates, each a few roundings.
			e.check("Welford mean", e.get(mean), wantMean, magMean, 4*u*float64(c.K))
			e.check("Welford M2/(K-1)", gotVar, wantVar, magVar, 8*u*float64(c.K))
			e.verify()
		})
	}
}
