package metal

import (
	"fmt"
	"strconv"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/metal/driver"
)

// Fill implements compute.Device.
func (d *Device) Fill(x *compute.Tensor, v float32) {
	d.dispatch1D("fill_buffer", words(u32(x.Len()), f32(v)), x.Len(), d.ref(x))
}

// Copy implements compute.Device.
func (d *Device) Copy(dst, src *compute.Tensor) {
	checkLen("Copy", dst.Len(), src)
	d.dispatch1D("copy_buffer", words(u32(dst.Len())), dst.Len(), d.ref(src), d.ref(dst))
}

// AXPY implements compute.Device.
func (d *Device) AXPY(a float32, x, y *compute.Tensor) {
	checkLen("AXPY", y.Len(), x)
	d.dispatch1D("axpy", words(u32(y.Len()), f32(a)), y.Len(), d.ref(x), d.ref(y))
}

// AXPBY implements compute.Device.
func (d *Device) AXPBY(a float32, x *compute.Tensor, b float32, y, out *compute.Tensor) {
	checkLen("AXPBY", out.Len(), x, y)
	d.dispatch1D("axpby", words(u32(out.Len()), f32(a), f32(b)), out.Len(), d.ref(x), d.ref(y), d.ref(out))
}

// AXPBYSample implements compute.Device.
func (d *Device) AXPBYSample(a, x, b, y, out *compute.Tensor) {
	n := out.Len()
	checkLen("AXPBYSample", n, x, y)
	if x.Rank() == 0 || x.Dim(0) == 0 {
		return
	}
	batch := x.Dim(0)
	checkLen("AXPBYSample (per-sample scalars)", batch, a, b)
	d.dispatch1D("axpby_sample", words(u32(n), u32(n/batch)), n,
		d.ref(a), d.ref(x), d.ref(b), d.ref(y), d.ref(out))
}

// SqDiff implements compute.Device.
func (d *Device) SqDiff(a, b, out *compute.Tensor) {
	checkLen("SqDiff", out.Len(), a, b)
	d.dispatch1D("sq_diff", words(u32(out.Len())), out.Len(), d.ref(a), d.ref(b), d.ref(out))
}

func actName(act compute.Act) string {
	switch act {
	case compute.ReLU, compute.SiLU, compute.Tanh:
		return act.String()
	}
	panic(fmt.Sprintf("metal: unknown activation %v", act))
}

// ActForward implements compute.Device.
func (d *Device) ActForward(act compute.Act, x, y *compute.Tensor) {
	checkLen("ActForward", y.Len(), x)
	d.dispatch1D(actName(act)+"_forward", words(u32(y.Len())), y.Len(), d.ref(x), d.ref(y))
}

// ActBackward implements compute.Device.
func (d *Device) ActBackward(act compute.Act, x, y, dy, dx *compute.Tensor) {
	in := x // ReLU and SiLU differentiate at the input, Tanh from its output
	if act == compute.Tanh {
		in = y
	}
	checkLen("ActBackward", dx.Len(), in, dy)
	d.dispatch1D(actName(act)+"_backward", words(u32(dx.Len())), dx.Len(), d.ref(in), d.ref(dy), d.ref(dx))
}

// channels returns (N, C, spatial) of an (N, C, …) tensor.
func channels(op string, x *compute.Tensor) (n, c, s int) {
	if x.Rank() < 2 {
		panic(fmt.Sprintf("metal: %s: tensor of shape %v has no channel dimension", op, x.Shape()))
	}
	n, c = x.Dim(0), x.Dim(1)
	if n*c == 0 {
		return n, c, 0
	}
	return n, c, x.Len() / (n * c)
}

// AddBias implements compute.Device.
func (d *Device) AddBias(x, b *compute.Tensor) {
	_, c, s := channels("AddBias", x)
	checkLen("AddBias (bias)", c, b)
	d.dispatch1D("add_bias", words(u32(x.Len()), u32(c), u32(s)), x.Len(), d.ref(x), d.ref(b))
}

// AddSampleBias implements compute.Device.
func (d *Device) AddSampleBias(x, b *compute.Tensor) {
	n, c, s := channels("AddSampleBias", x)
	checkLen("AddSampleBias (bias)", n*c, b)
	d.dispatch1D("add_sample_bias", words(u32(x.Len()), u32(s)), x.Len(), d.ref(x), d.ref(b))
}

const redThreads = 256 // RED_THREADS and GN_THREADS in the shaders

// SumChannels implements compute.Device.
func (d *Device) SumChannels(x, out *compute.Tensor) {
	n, c, s := channels("SumChannels", x)
	checkLen("SumChannels (out)", c, out)
	d.dispatch("sum_channels", words(u32(n), u32(c), u32(s)), [3]int{c, 1, 1}, [3]int{redThreads, 1, 1},
		d.ref(x), d.ref(out))
}

// rowSum queues out[r] = scale·Σ x[r·len …] over rows rows.
func (d *Device) rowSum(x, out *compute.Tensor, rows, length int, scale float32) {
	d.dispatch("row_sum", words(u32(length), f32(scale)), [3]int{rows, 1, 1}, [3]int{redThreads, 1, 1},
		d.ref(x), d.ref(out))
}

// SumSpatial implements compute.Device.
func (d *Device) SumSpatial(x, out *compute.Tensor) {
	n, c, s := channels("SumSpatial", x)
	checkLen("SumSpatial (out)", n*c, out)
	d.rowSum(x, out, n*c, s, 1)
}

// MeanSample implements compute.Device.
func (d *Device) MeanSample(x, out *compute.Tensor) {
	if x.Rank() == 0 {
		panic(fmt.Sprintf("metal: MeanSample: tensor of shape %v has no sample dimension", x.Shape()))
	}
	n := x.Dim(0)
	checkLen("MeanSample (out)", n, out)
	if n == 0 {
		return
	}
	per := x.Len() / n
	scale := float32(0)
	if per > 0 {
		scale = float32(1 / float64(per))
	}
	d.rowSum(x, out, n, per, scale)
}

// MeanChannels implements compute.Device.
func (d *Device) MeanChannels(x, out *compute.Tensor) {
	n, c, s := channels("MeanChannels", x)
	checkLen("MeanChannels (out)", n*s, out)
	d.dispatch1D("mean_channels", words(u32(n*s), u32(c), u32(s)), n*s, d.ref(x), d.ref(out))
}

// Welford implements compute.Device.
func (d *Device) Welford(x, mean, m2 *compute.Tensor, k int) {
	checkLen("Welford", x.Len(), mean, m2)
	if k < 1 {
		panic(fmt.Sprintf("metal: Welford: sample count %d, want ≥ 1", k))
	}
	d.dispatch1D("welford", words(u32(x.Len()), f32(float32(k))), x.Len(), d.ref(x), d.ref(mean), d.ref(m2))
}

const gemmTile = 16 // GEMM_TILE in gemm.metal

// Gemm implements compute.Device.
func (d *Device) Gemm(transA, transB bool, alpha float32, a, b *compute.Tensor, beta float32, c *compute.Tensor) {
	m, n, k, err := compute.GemmDims(transA, transB, a, b, c)
	if err != nil {
		panic("metal: " + err.Error())
	}
	d.dispatch("gemm_tiled",
		words(u32(m), u32(n), u32(k), u32(a.Dim(1)), u32(b.Dim(1)), b32(transA), b32(transB), f32(alpha), f32(beta)),
		[3]int{ceilDiv(n, gemmTile), ceilDiv(m, gemmTile), 1}, [3]int{gemmTile, gemmTile, 1},
		d.ref(a), d.ref(b), d.ref(c))
}

// groupNormDims checks GroupNorm's shapes and returns (N, C, spatial).
func groupNormDims(op string, x *compute.Tensor, groups int, perGroup ...*compute.Tensor) (int, int, int) {
	n, c, s := channels(op, x)
	if groups <= 0 || c%groups != 0 {
		panic(fmt.Sprintf("metal: %s: %d channels do not split into %d groups", op, c, groups))
	}
	checkLen(op+" (per-group statistics)", n*groups, perGroup...)
	return n, c, s
}

// GroupNormForward implements compute.Device.
func (d *Device) GroupNormForward(x, gamma, beta, y, mean, rstd *compute.Tensor, groups int, eps float32) {
	n, c, s := groupNormDims("GroupNormForward", x, groups, mean, rstd)
	checkLen("GroupNormForward (gamma, beta)", c, gamma, beta)
	checkLen("GroupNormForward (y)", x.Len(), y)
	d.dispatch("group_norm_forward", words(u32(c), u32(s), u32(groups), f32(eps)),
		[3]int{n * groups, 1, 1}, [3]int{redThreads, 1, 1},
		d.ref(x), d.ref(gamma), d.ref(beta), d.ref(y), d.ref(mean), d.ref(rstd))
}

// GroupNormSiLU implements compute.Device: one kernel, with a nil pre or bias bound to the
// dummy buffer and switched off in the arguments.
func (d *Device) GroupNormSiLU(x, gamma, beta, bias, pre, y, mean, rstd *compute.Tensor, groups int, eps float32) {
	n, c, s := groupNormDims("GroupNormSiLU", x, groups, mean, rstd)
	checkLen("GroupNormSiLU (gamma, beta)", c, gamma, beta)
	checkLen("GroupNormSiLU (y)", x.Len(), y)
	preRef, biasRef := d.dummyRef(), d.dummyRef()
	if pre != nil {
		checkLen("GroupNormSiLU (pre)", x.Len(), pre)
		preRef = d.ref(pre)
	}
	if bias != nil {
		checkLen("GroupNormSiLU (bias)", n*c, bias)
		biasRef = d.ref(bias)
	}
	d.dispatch("group_norm_silu", words(u32(c), u32(s), u32(groups), f32(eps), b32(pre != nil), b32(bias != nil)),
		[3]int{n * groups, 1, 1}, [3]int{redThreads, 1, 1},
		d.ref(x), d.ref(gamma), d.ref(beta), biasRef, preRef, d.ref(y), d.ref(mean), d.ref(rstd))
}

// GroupNormBackward implements compute.Device. dgamma and dbeta may be nil when not wanted.
func (d *Device) GroupNormBackward(x, dy, gamma, mean, rstd, dx, dgamma, dbeta *compute.Tensor, groups int) {
	n, c, s := groupNormDims("GroupNormBackward", x, groups, mean, rstd)
	checkLen("GroupNormBackward (gamma)", c, gamma)
	checkLen("GroupNormBackward (dy, dx)", x.Len(), dy, dx)
	d.dispatch("group_norm_backward_data", words(u32(c), u32(s), u32(groups), 0),
		[3]int{n * groups, 1, 1}, [3]int{redThreads, 1, 1},
		d.ref(x), d.ref(dy), d.ref(gamma), d.ref(mean), d.ref(rstd), d.ref(dx))
	if dgamma == nil && dbeta == nil {
		return
	}
	refs := [2]driver.Ref{}
	for i, t := range []*compute.Tensor{dgamma, dbeta} {
		if t == nil {
			tmp := d.getBuffer(4*c, false, false)
			defer d.putBuffer(tmp) // after the dispatch below is queued: GPU-ordered reuse only
			refs[i] = driver.Ref{Buf: tmp}
			continue
		}
		checkLen("GroupNormBackward (dgamma, dbeta)", c, t)
		refs[i] = d.ref(t)
	}
	d.dispatch("group_norm_backward_params", words(u32(n), u32(c), u32(s), u32(groups)),
		[3]int{c, 1, 1}, [3]int{redThreads, 1, 1},
		d.ref(x), d.ref(dy), d.ref(mean), d.ref(rstd), refs[0], refs[1])
}

// Adam implements compute.Device.
func (d *Device) Adam(p, g, m, v *compute.Tensor, a compute.AdamArgs) {
	checkLen("Adam", p.Len(), g, m, v)
	d.dispatch1D("adam_step",
		words(u32(p.Len()), f32(a.Beta1), f32(a.Beta2), f32(complement(a.Beta1)), f32(complement(a.Beta2)),
			f32(a.Eps), f32(a.WeightDecay), f32(a.StepSize), f32(a.BC2Sqrt)),
		p.Len(), d.ref(p), d.ref(g), d.ref(m), d.ref(v))
}

// complement returns 1-b as PyTorch forms it: Python computes 1-beta in double precision
// from the decimal the user wrote and the kernel rounds it once to float32. b arrives as a
// float32, so the decimal is recovered as the shortest one that rounds to it.
func complement(b float32) float32 {
	f, err := strconv.ParseFloat(strconv.FormatFloat(float64(b), 'g', -1, 32), 64)
	if err != nil {
		f = float64(b) // cannot happen for a formatted float
	}
	return float32(1 - f)
}
