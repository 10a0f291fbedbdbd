package metal

import (
	"fmt"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/metal/driver"
)

type convOp int

const (
	convFwd convOp = iota
	convBwdData
	convBwdWeight
)

var convKernelPrefix = [...]string{"conv3d_forward", "conv3d_backward_data", "conv3d_backward_weight"}

// convGeom is the geometry of one convolution: x (N,Ci,D,H,W), w (Co,Ci,kD,kH,kW),
// y (N,Co,D',H',W').
type convGeom struct {
	n, ci, co int
	in, out   [3]int
	k         [3]int
	p         compute.Conv
}

// geometry validates a convolution's shapes; x and y may be the data or their gradients.
func geometry(op string, x, w, y *compute.Tensor, p compute.Conv) convGeom {
	if x.Rank() != 5 || w.Rank() != 5 || y.Rank() != 5 {
		panic(fmt.Sprintf("metal: %s needs 5-D tensors, got input %v, weight %v, output %v", op, x.Shape(), w.Shape(), y.Shape()))
	}
	g := convGeom{n: x.Dim(0), ci: x.Dim(1), co: w.Dim(0), p: p}
	if w.Dim(1) != g.ci || y.Dim(0) != g.n || y.Dim(1) != g.co {
		panic(fmt.Sprintf("metal: %s: input %v, weight %v and output %v disagree on batch or channels", op, x.Shape(), w.Shape(), y.Shape()))
	}
	for a := 0; a < 3; a++ {
		g.in[a], g.k[a], g.out[a] = x.Dim(2+a), w.Dim(2+a), y.Dim(2+a)
		if p.Stride[a] < 1 || p.Pad[a] < 0 || g.k[a] < 1 {
			panic(fmt.Sprintf("metal: %s: bad stride %v, padding %v or kernel %v", op, p.Stride, p.Pad, w.Shape()[2:]))
		}
		if want := compute.OutSize(g.in[a], g.k[a], p.Stride[a], p.Pad[a]); want != g.out[a] || want < 1 {
			panic(fmt.Sprintf("metal: %s: input %v with kernel %v, stride %v, padding %v gives output extent %d on axis %d, but the output is %v",
				op, x.Shape(), w.Shape()[2:], p.Stride, p.Pad, want, a, y.Shape()))
		}
	}
	return g
}

// gemm returns the implicit GEMM's (M, N, K) for op.
func (g convGeom) gemm(op convOp) (m, n, k int) {
	kvol := g.k[0] * g.k[1] * g.k[2]
	pin := g.in[0] * g.in[1] * g.in[2]
	pout := g.out[0] * g.out[1] * g.out[2]
	switch op {
	case convFwd:
		return g.co, g.n * pout, g.ci * kvol
	case convBwdData:
		return g.ci, g.n * pin, g.co * kvol
	default:
		return g.co, g.ci * kvol, g.n * pout
	}
}

// tile sizes of the variants: CT_BM×CT_BN and CS_BM×CS_BN in conv3d.metal.
const (
	tiledBM, tiledBN, tiledThreads = 64, 64, 256
	simdBM, simdBN, simdThreads    = 32, 32, 128
)

// variant picks the kernel family for a GEMM of m×n×k.
func (d *Device) variant(m, n, k int) ConvVariant {
	if d.opts.Conv != ConvAuto {
		return d.opts.Conv
	}
	switch {
	case m < 8 || k < 32 || m*n*k < 1<<15:
		// Thin, shallow or tiny: most of a tile would be padding, or a tile's loads and
		// barriers would cost more than its few multiply-adds.
		return ConvDirect
	case m >= simdBM && n >= simdBN:
		return ConvSimd
	default:
		return ConvTiled
	}
}

// grid returns the threadgroup grid (before splits) and the threadgroup size.
func grid(v ConvVariant, m, n int) ([3]int, [3]int) {
	switch v {
	case ConvTiled:
		return [3]int{ceilDiv(n, tiledBN), ceilDiv(m, tiledBM), 1}, [3]int{tiledThreads, 1, 1}
	case ConvSimd:
		return [3]int{ceilDiv(n, simdBN), ceilDiv(m, simdBM), 1}, [3]int{simdThreads, 1, 1}
	default:
		return [3]int{ceilDiv(m*n, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1}
	}
}

// splitTarget is how many threadgroups the weight gradient aims for, so a reduction over
// a large batch·D'H'W' with few outputs still fills the GPU; minSplitLen keeps each split
// long enough to amortise its partial result.
const (
	splitTarget = 256
	minSplitLen = 1024
)

// splits decides how many pieces the reduction of length k is cut into.
func (d *Device) splits(groups, k int) int {
	s := d.opts.Splits
	if s <= 0 {
		s = min(ceilDiv(splitTarget, max(groups, 1)), ceilDiv(k, minSplitLen))
	}
	return max(1, min(s, k))
}

// conv queues one implicit GEMM. a and b are the GEMM operands' tensors (see conv3d.metal),
// out the result, bias optional (forward only).
func (d *Device) conv(op convOp, g convGeom, a, b, bias, out *compute.Tensor) {
	m, n, k := g.gemm(op)
	if m == 0 || n == 0 {
		return
	}
	v := d.variant(m, n, k)
	if _, threads := grid(v, m, n); d.kernel(convKernelPrefix[op]+"_"+v.String()).MaxThreads() < threads[0] {
		// A pipeline whose register use leaves fewer threads than the tile needs (possible
		// on some GPUs) falls back to the one-thread-per-output kernel.
		v = ConvDirect
	}
	groups, threads := grid(v, m, n)
	if op == convBwdData && v != ConvDirect {
		// The tiled kernels run each phase of the stride as its own dense GEMM in grid z
		// (conv_phase in conv3d.metal); the widest phase sets the grid's width.
		phases, cols := 1, g.n
		for ax := 0; ax < 3; ax++ {
			phases *= g.p.Stride[ax]
			cols *= ceilDiv(g.in[ax], g.p.Stride[ax])
		}
		groups, threads = grid(v, m, cols)
		groups[2] = phases
		d.dispatch(convKernelPrefix[op]+"_"+v.String(), convArgs(g, m, n, k, k, false),
			groups, threads, d.ref(a), d.ref(b), d.dummyRef(), d.ref(out))
		return
	}
	splits := 1
	if op == convBwdWeight {
		splits = d.splits(groups[0]*groups[1], k)
	}
	chunk := ceilDiv(k, splits)
	if splits > 1 {
		chunk = ceilDiv(chunk, 16) * 16 // whole 16-deep tiles per split
		splits = ceilDiv(k, chunk)
	}
	if k == 0 {
		chunk = 0
	}
	groups[2] = splits
	args := convArgs(g, m, n, k, chunk, bias != nil)
	biasRef := d.dummyRef()
	if bias != nil {
		biasRef = d.ref(bias)
	}
	name := convKernelPrefix[op] + "_" + v.String()
	if splits == 1 {
		d.dispatch(name, args, groups, threads, d.ref(a), d.ref(b), biasRef, d.ref(out))
		return
	}
	if m*n*splits > 1<<31 {
		panic(fmt.Sprintf("metal: %s: %d partial sums of %d×%d do not fit 32-bit indexing", name, splits, m, n))
	}
	part := d.getBuffer(4*m*n*splits, false, false)
	d.dispatch(name, args, groups, threads, d.ref(a), d.ref(b), biasRef, driver.Ref{Buf: part})
	d.dispatch1D("conv3d_sum_splits", words(u32(m*n), u32(splits)), m*n, driver.Ref{Buf: part}, d.ref(out))
	d.putBuffer(part) // queued work still uses it: GPU-ordered reuse only until the next wait
}

// Conv3d implements compute.Device.
func (d *Device) Conv3d(x, w, bias, y *compute.Tensor, p compute.Conv) {
	g := geometry("Conv3d", x, w, y, p)
	if bias != nil {
		checkLen("Conv3d (bias)", g.co, bias)
	}
	d.conv(convFwd, g, w, x, bias, y)
}

// Conv3dBackwardData implements compute.Device.
func (d *Device) Conv3dBackwardData(dy, w, dx *compute.Tensor, p compute.Conv) {
	g := geometry("Conv3dBackwardData", dx, w, dy, p)
	d.conv(convBwdData, g, w, dy, nil, dx)
}

// Conv3dBackwardWeight implements compute.Device.
func (d *Device) Conv3dBackwardWeight(x, dy, dw, db *compute.Tensor, p compute.Conv) {
	g := geometry("Conv3dBackwardWeight", x, dw, dy, p)
	d.conv(convBwdWeight, g, dy, x, nil, dw)
	if db != nil {
		checkLen("Conv3dBackwardWeight (db)", g.co, db)
		d.SumChannels(dy, db)
	}
}

// convArgs packs ConvArgs (conv3d.metal).
func convArgs(g convGeom, m, n, k, chunk int, hasBias bool) []byte {
	return words(
		u32(g.n), u32(g.ci), u32(g.in[0]), u32(g.in[1]), u32(g.in[2]),
		u32(g.co), u32(g.out[0]), u32(g.out[1]), u32(g.out[2]),
		u32(g.k[0]), u32(g.k[1]), u32(g.k[2]),
		u32(g.p.Stride[0]), u32(g.p.Stride[1]), u32(g.p.Stride[2]),
		u32(g.p.Pad[0]), u32(g.p.Pad[1]), u32(g.p.Pad[2]),
		u32(m), u32(n), u32(k), u32(chunk), b32(hasBias))
}
