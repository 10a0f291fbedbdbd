package fallback

import (
	"fmt"
	"math"
	"strconv"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback/kern"
)

func (d *cpu) Fill(x *compute.Tensor, v float32) {
	xs := d.data(x)
	parallel(len(xs), 1, func(lo, hi int) {
		s := xs[lo:hi]
		for i := range s {
			s[i] = v
		}
	})
}

func (d *cpu) Copy(dst, src *compute.Tensor) {
	mustSameLen("Copy", dst, src)
	copy(d.data(dst), d.data(src))
}

func (d *cpu) AXPY(a float32, x, y *compute.Tensor) {
	mustSameLen("AXPY", x, y)
	xs, ys := d.data(x), d.data(y)
	parallel(len(xs), 1, func(lo, hi int) { kern.AXPY(a, xs[lo:hi], ys[lo:hi]) })
}

func (d *cpu) AXPBY(a float32, x *compute.Tensor, b float32, y, out *compute.Tensor) {
	mustSameLen("AXPBY", x, y, out)
	xs, ys, os := d.data(x), d.data(y), d.data(out)
	parallel(len(xs), 1, func(lo, hi int) { kern.AXPBY(a, xs[lo:hi], b, ys[lo:hi], os[lo:hi]) })
}

func (d *cpu) AXPBYSample(a, x, b, y, out *compute.Tensor) {
	mustSameLen("AXPBYSample", x, y, out)
	n := x.Dim(0)
	mustShape("AXPBYSample", "a", a, n)
	mustShape("AXPBYSample", "b", b, n)
	as, bs := d.data(a), d.data(b)
	xs, ys, os := d.data(x), d.data(y), d.data(out)
	per := len(xs) / max(n, 1)
	parallel(len(xs), 1, func(lo, hi int) {
		for lo < hi {
			s := lo / per
			end := min(hi, (s+1)*per)
			kern.AXPBY(as[s], xs[lo:end], bs[s], ys[lo:end], os[lo:end])
			lo = end
		}
	})
}

func (d *cpu) SqDiff(a, b, out *compute.Tensor) {
	mustSameLen("SqDiff", a, b, out)
	as, bs, os := d.data(a), d.data(b), d.data(out)
	parallel(len(as), 1, func(lo, hi int) {
		x, y, o := as[lo:hi], bs[lo:hi], os[lo:hi]
		y, o = y[:len(x)], o[:len(x)]
		for i := range x {
			t := x[i] - y[i]
			o[i] = t * t
		}
	})
}

// SiLU runs on kern's vectorised float32 exp (within 3 ulps forward, 4 backward, like
// PyTorch's SLEEF-based kernels); Tanh, only at the autoencoder's output, is evaluated in
// float64 and rounded once.
func (d *cpu) ActForward(act compute.Act, x, y *compute.Tensor) {
	mustSameLen("ActForward", x, y)
	xs, ys := d.data(x), d.data(y)
	switch act {
	case compute.ReLU:
		// Branch-free in kern (NaN and −0 pass through, as in PyTorch).
		parallel(len(xs), 1, func(lo, hi int) { kern.ReLU(xs[lo:hi], ys[lo:hi]) })
	case compute.SiLU:
		// kern.SiLU is vectorised (a few ulps, see its doc); per element it now costs
		// about as much as the ReLU loop, hence the low cost weight for the split.
		parallel(len(xs), 2, func(lo, hi int) {
			kern.SiLU(xs[lo:hi], ys[lo:hi])
		})
	case compute.Tanh:
		parallel(len(xs), 20, func(lo, hi int) {
			in, out := xs[lo:hi], ys[lo:hi]
			out = out[:len(in)]
			for i, v := range in {
				out[i] = float32(math.Tanh(float64(v)))
			}
		})
	default:
		panic(fmt.Sprintf("fallback: ActForward: unknown activation %v", act))
	}
}

func (d *cpu) ActBackward(act compute.Act, x, y, dy, dx *compute.Tensor) {
	switch act {
	case compute.ReLU:
		mustSameLen("ActBackward", x, dy, dx)
		xs, dys, dxs := d.data(x), d.data(dy), d.data(dx)
		// As torch's threshold_backward: a NaN input passes the gradient.
		parallel(len(xs), 1, func(lo, hi int) { kern.ReLUBackward(xs[lo:hi], dys[lo:hi], dxs[lo:hi]) })
	case compute.SiLU:
		mustSameLen("ActBackward", x, dy, dx)
		xs, dys, dxs := d.data(x), d.data(dy), d.data(dx)
		parallel(len(xs), 2, func(lo, hi int) {
			kern.SiLUBackward(xs[lo:hi], dys[lo:hi], dxs[lo:hi])
		})
	case compute.Tanh:
		mustSameLen("ActBackward", y, dy, dx)
		ys, dys, dxs := d.data(y), d.data(dy), d.data(dx)
		parallel(len(ys), 2, func(lo, hi int) {
			in, g, out := ys[lo:hi], dys[lo:hi], dxs[lo:hi]
			g, out = g[:len(in)], out[:len(in)]
			for i, v := range in {
				out[i] = float32(float64(g[i]) * (1 - float64(v)*float64(v)))
			}
		})
	default:
		panic(fmt.Sprintf("fallback: ActBackward: unknown activation %v", act))
	}
}

// nc returns N, C and the spatial size of x (N, C, …).
func nc(op string, x *compute.Tensor) (n, c, sp int) {
	if x.Rank() < 2 {
		panic(fmt.Sprintf("fallback: %s: %v needs at least (N, C) dimensions", op, x))
	}
	n, c = x.Dim(0), x.Dim(1)
	return n, c, x.Len() / max(n*c, 1)
}

func (d *cpu) AddBias(x, b *compute.Tensor) {
	n, c, sp := nc("AddBias", x)
	mustShape("AddBias", "b", b, c)
	xs, bs := d.data(x), d.data(b)
	parallel(n*c, sp, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			addScalar(xs[r*sp:(r+1)*sp], bs[r%c])
		}
	})
}

func (d *cpu) AddSampleBias(x, b *compute.Tensor) {
	n, c, sp := nc("AddSampleBias", x)
	mustShape("AddSampleBias", "b", b, n, c)
	xs, bs := d.data(x), d.data(b)
	parallel(n*c, sp, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			addScalar(xs[r*sp:(r+1)*sp], bs[r])
		}
	})
}

// addScalar sets x[i] += v, unrolled by 8: as a plain loop it took 23% of GroupNormSiLU's
// time, unrolled 14% (the same additions, so the same bits).
func addScalar(x []float32, v float32) {
	i := 0
	for ; i+8 <= len(x); i += 8 {
		s := x[i : i+8 : i+8]
		s[0] += v
		s[1] += v
		s[2] += v
		s[3] += v
		s[4] += v
		s[5] += v
		s[6] += v
		s[7] += v
	}
	for ; i < len(x); i++ {
		x[i] += v
	}
}

// sum64 adds x in float64: exact enough that the result is the correctly rounded sum for
// any length the models meet.
func sum64(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

func (d *cpu) SumChannels(x, out *compute.Tensor) {
	n, c, sp := nc("SumChannels", x)
	mustShape("SumChannels", "out", out, c)
	xs, os := d.data(x), d.data(out)
	parallel(c, n*sp, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var s float64
			for i := range n {
				r := i*c + ch
				s += sum64(xs[r*sp : (r+1)*sp])
			}
			os[ch] = float32(s)
		}
	})
}

func (d *cpu) SumSpatial(x, out *compute.Tensor) {
	n, c, sp := nc("SumSpatial", x)
	mustShape("SumSpatial", "out", out, n, c)
	xs, os := d.data(x), d.data(out)
	parallel(n*c, sp, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			os[r] = float32(sum64(xs[r*sp : (r+1)*sp]))
		}
	})
}

func (d *cpu) MeanSample(x, out *compute.Tensor) {
	if x.Rank() < 1 {
		panic(fmt.Sprintf("fallback: MeanSample: %v has no sample dimension", x))
	}
	n := x.Dim(0)
	mustShape("MeanSample", "out", out, n)
	xs, os := d.data(x), d.data(out)
	per := x.Len() / max(n, 1)
	parallel(n, per, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			os[i] = float32(sum64(xs[i*per:(i+1)*per]) / float64(per))
		}
	})
}

func (d *cpu) MeanChannels(x, out *compute.Tensor) {
	n, c, sp := nc("MeanChannels", x)
	want := append([]int{n, 1}, x.Shape()[2:]...)
	mustShape("MeanChannels", "out", out, want...)
	xs, os := d.data(x), d.data(out)
	parallel(n, c*sp, func(lo, hi int) {
		acc := make([]float64, sp)
		for i := lo; i < hi; i++ {
			clear(acc)
			for ch := range c {
				row := xs[(i*c+ch)*sp : (i*c+ch+1)*sp]
				for j, v := range row {
					acc[j] += float64(v)
				}
			}
			o := os[i*sp : (i+1)*sp]
			for j := range o {
				o[j] = float32(acc[j] / float64(c))
			}
		}
	})
}

// Welford: k = 1 starts afresh (mean = x, M2 = 0) whatever the buffers held, so callers
// need not clear them.
func (d *cpu) Welford(x, mean, m2 *compute.Tensor, k int) {
	mustSameLen("Welford", x, mean, m2)
	if k < 1 {
		panic(fmt.Sprintf("fallback: Welford: sample index k = %d, want k ≥ 1", k))
	}
	xs, ms, m2s := d.data(x), d.data(mean), d.data(m2)
	if k == 1 {
		copy(ms, xs)
		clear(m2s)
		return
	}
	inv := 1 / float64(k)
	parallel(len(xs), 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v, m := float64(xs[i]), float64(ms[i])
			delta := v - m
			m += delta * inv
			ms[i] = float32(m)
			m2s[i] = float32(float64(m2s[i]) + delta*(v-m))
		}
	})
}

// Adam follows torch.optim.Adam (PyTorch 1.13, single-tensor path) operation by operation,
// rounded to float32 where PyTorch's float32 CPU kernels round (checked bit for bit against
// torch on an AVX2 machine, where add(alpha=…) and addcmul are fused multiply-adds):
//
//	g = fma(wd, p, g)              (only when wd ≠ 0)
//	m = fma(1-β1, g, m·β1)
//	v = fma((1-β2)·g, g, v·β2)
//	p = p + ((-step)·m) / (sqrt(v)/bc2 + eps)
//
// A float64 sum of an exact float32×float32 product and a float32 is the fused result
// (up to a double rounding that essentially never happens). The complements 1-β are formed
// as Python forms them: from the double the user wrote (recovered as the shortest decimal
// that rounds to the float32 β), then rounded to float32.
func (d *cpu) Adam(p, g, m, v *compute.Tensor, a compute.AdamArgs) {
	mustSameLen("Adam", p, g, m, v)
	ps, gs, ms, vs := d.data(p), d.data(g), d.data(m), d.data(v)
	b1, b2, eps := a.Beta1, a.Beta2, a.Eps
	wd := float64(a.WeightDecay)
	c1, c2 := float64(complement(b1)), complement(b2)
	negStep, bc2 := -a.StepSize, a.BC2Sqrt
	parallel(len(ps), 8, func(lo, hi int) {
		p, g, m, v := ps[lo:hi], gs[lo:hi], ms[lo:hi], vs[lo:hi]
		g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
		for i := range p {
			gi := g[i]
			if wd != 0 {
				gi = float32(float64(gi) + wd*float64(p[i]))
			}
			mi := float32(float64(float32(m[i]*b1)) + c1*float64(gi))
			vi := float32(float64(float32(v[i]*b2)) + float64(float32(c2*gi))*float64(gi))
			m[i], v[i] = mi, vi
			den := float32(float32(math.Sqrt(float64(vi)))/bc2) + eps
			p[i] += float32(negStep*mi) / den
		}
	})
}

// complement returns 1-b rounded to float32 as Python computes it for the decimal b was
// written as (1-0.9 in double precision, not 1-float32(0.9)).
func complement(b float32) float32 {
	f, err := strconv.ParseFloat(strconv.FormatFloat(float64(b), 'g', -1, 32), 64)
	if err != nil { // cannot happen for a formatted float; keep the float32 value
		f = float64(b)
	}
	return float32(1 - f)
}
