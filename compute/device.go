package compute

import "fmt"

// Act names an elementwise activation.
type Act int

const (
	ReLU Act = iota // max(x, 0)
	SiLU            // x·σ(x)
	Tanh            // tanh(x)
)

func (a Act) String() string {
	switch a {
	case ReLU:
		return "relu"
	case SiLU:
		return "silu"
	case Tanh:
		return "tanh"
	}
	return fmt.Sprintf("Act(%d)", int(a))
}

// Conv describes a 3-D convolution's geometry; the kernel size comes from the weight.
// Index order is (D, H, W).
type Conv struct {
	Stride [3]int
	Pad    [3]int
}

// Conv3x3 is a kernel-3, stride-1, padding-1 convolution (the velocity model's).
var Conv3x3 = Conv{Stride: [3]int{1, 1, 1}, Pad: [3]int{1, 1, 1}}

// ConvS2P1 is a stride-2, padding-1 convolution (the autoencoder's kernel-4 down/up steps).
var ConvS2P1 = Conv{Stride: [3]int{2, 2, 2}, Pad: [3]int{1, 1, 1}}

// OutSize is the output extent of a convolution along one axis.
func OutSize(in, kernel, stride, pad int) int { return (in+2*pad-kernel)/stride + 1 }

// TransposedOutSize is the output extent of a transposed convolution along one axis
// (no output padding).
func TransposedOutSize(in, kernel, stride, pad int) int { return (in-1)*stride - 2*pad + kernel }

// GemmDims returns the sizes of Gemm's C = op(A)·op(B) (op(A) m×k, op(B) k×n), or an error
// naming the shapes when the tensors are not 2-D or do not fit; every backend checks its
// arguments with it.
func GemmDims(transA, transB bool, a, b, c *Tensor) (m, n, k int, err error) {
	if a.Rank() != 2 || b.Rank() != 2 || c.Rank() != 2 {
		return 0, 0, 0, fmt.Errorf("Gemm needs 2-D tensors, got %v, %v, %v", a.Shape(), b.Shape(), c.Shape())
	}
	m, k = a.Dim(0), a.Dim(1)
	if transA {
		m, k = k, m
	}
	kb, n := b.Dim(0), b.Dim(1)
	if transB {
		kb, n = n, kb
	}
	if kb != k || c.Dim(0) != m || c.Dim(1) != n {
		return 0, 0, 0, fmt.Errorf("Gemm(transA=%v, transB=%v) shapes do not match: op(A) %d×%d, op(B) %d×%d, C %v",
			transA, transB, m, k, kb, n, c.Shape())
	}
	return m, n, k, nil
}

// AdamArgs are the per-step scalars of PyTorch's Adam (torch.optim.Adam, not AdamW),
// computed on the host in float64 and rounded once:
//
//	g' = g + WeightDecay·p
//	m  = Beta1·m + (1-Beta1)·g'
//	v  = Beta2·v + (1-Beta2)·g'²
//	p -= StepSize · m / (sqrt(v)/BC2Sqrt + Eps)
//
// with StepSize = lr/(1-Beta1^step) and BC2Sqrt = sqrt(1-Beta2^step).
type AdamArgs struct {
	Beta1, Beta2, Eps, WeightDecay float32
	StepSize, BC2Sqrt              float32
}

// HostMemory is implemented by devices whose tensors are ordinary host memory (the CPU
// backend). HostSlice returns t's elements themselves, not a copy: the slice changes with
// every op that writes t and must not be used after t's Release.
type HostMemory interface {
	HostSlice(t *Tensor) []float32
}

// Device is a backend. Every tensor argument must belong to the device. Unless an op says
// otherwise, outputs are overwritten (not accumulated) and must not alias inputs.
//
// Shapes: x is (N, C, D, H, W) for convolutions and GroupNorm; "per sample" means per index
// of the first dimension; "spatial" means everything after the first two dimensions.
type Device interface {
	// Name is a short name such as "cpu" or "metal (Apple M3)".
	Name() string

	// Alloc returns a zero-filled tensor.
	Alloc(shape ...int) *Tensor
	// Release frees t's buffer if t owns it (not a view); t must not be used afterwards.
	Release(t *Tensor)
	// Upload copies len(src) == t.Len() values into t.
	Upload(t *Tensor, src []float32)
	// Download waits for queued work and copies t into dst (len(dst) == t.Len()).
	Download(t *Tensor, dst []float32)
	// Sync waits for all queued work and reports any fault it met.
	Sync() error

	// Fill sets every element of x to v.
	Fill(x *Tensor, v float32)
	// Copy copies src into dst (same length; shapes may differ).
	Copy(dst, src *Tensor)
	// AXPY computes y += a·x.
	AXPY(a float32, x, y *Tensor)
	// AXPBY computes out = a·x + b·y; out may alias x or y.
	AXPBY(a float32, x *Tensor, b float32, y, out *Tensor)
	// AXPBYSample computes out[n,…] = a[n]·x[n,…] + b[n]·y[n,…] with a, b of shape (N);
	// out may alias x or y.
	AXPBYSample(a, x, b, y, out *Tensor)
	// SqDiff computes out = (a-b)²; out may alias a or b.
	SqDiff(a, b, out *Tensor)

	// ActForward computes y = act(x); y may alias x.
	ActForward(act Act, x, y *Tensor)
	// ActBackward computes dx = dy·act'(x), given the input x and output y of the forward
	// pass (ReLU and SiLU read only x, so y may be nil for them; Tanh reads only y); dx may
	// alias dy.
	ActBackward(act Act, x, y, dy, dx *Tensor)

	// AddBias computes x[n,c,…] += b[c] for b of shape (C).
	AddBias(x, b *Tensor)
	// AddSampleBias computes x[n,c,…] += b[n,c] for b of shape (N, C).
	AddSampleBias(x, b *Tensor)
	// SumChannels computes out[c] = Σ_{n,…} x[n,c,…] (the gradient of AddBias).
	SumChannels(x, out *Tensor)
	// SumSpatial computes out[n,c] = Σ_… x[n,c,…] (the gradient of AddSampleBias).
	SumSpatial(x, out *Tensor)
	// MeanSample computes out[n] = mean over all other dimensions of x[n,…].
	MeanSample(x, out *Tensor)
	// MeanChannels computes out[n,0,…] = mean over c of x[n,c,…]; out is (N, 1, …).
	MeanChannels(x, out *Tensor)
	// Welford adds the k-th sample x (k counts from 1) to running per-element mean and
	// M2 (sum of squared deviations): the unbiased variance after K samples is M2/(K-1).
	Welford(x, mean, m2 *Tensor, k int)

	// Gemm computes C = alpha·op(A)·op(B) + beta·C on 2-D tensors, op(X) = Xᵀ when trans.
	Gemm(transA, transB bool, alpha float32, a, b *Tensor, beta float32, c *Tensor)

	// Conv3d computes y = conv(x, w) + bias for x (N,Ci,D,H,W), w (Co,Ci,kD,kH,kW),
	// bias (Co) or nil, y (N,Co,D',H',W') with D' = OutSize(D, kD, stride, pad).
	Conv3d(x, w, bias, y *Tensor, p Conv)
	// Conv3dBackwardData computes dx = ∂(conv)/∂x applied to dy, i.e. the transposed
	// convolution of dy with w; dx's shape fixes the input extent. ConvTranspose3d's
	// forward pass is this op (its weight (Cin,Cout,k…) plays w with Co=Cin).
	Conv3dBackwardData(dy, w, dx *Tensor, p Conv)
	// Conv3dBackwardWeight computes dw[o,i,k…] = Σ dy[n,o,…]·x[n,i,…shifted] and, when db
	// is not nil, db[o] = Σ dy[n,o,…].
	Conv3dBackwardWeight(x, dy, dw, db *Tensor, p Conv)

	// GroupNormForward normalises x (N,C,…) over G groups of C/G channels and the spatial
	// extent (biased variance), then applies per-channel gamma and beta. It keeps the per
	// (n, group) mean and rstd = 1/sqrt(var+eps), both of shape (N, G), for the backward.
	GroupNormForward(x, gamma, beta, y, mean, rstd *Tensor, groups int, eps float32)
	// GroupNormBackward computes dx, dgamma and dbeta from the forward's x, mean and rstd.
	GroupNormBackward(x, dy, gamma, mean, rstd, dx, dgamma, dbeta *Tensor, groups int)
	// GroupNormSiLU is GroupNormForward, then SiLU, then AddSampleBias, fused so that x is
	// normalised and activated in one pass: with pre = GroupNorm(x) (as GroupNormForward's y),
	//
	//	y[n,c,…] = SiLU(pre[n,c,…]) + bias[n,c]
	//
	// and mean and rstd as GroupNormForward keeps them. bias (N, C) may be nil (no add).
	// pre, x's shape, is written only when not nil: SiLU's backward needs it, a caller that
	// recomputes it later need not keep it. y, mean and rstd must come out the same, bit
	// for bit, whether pre is nil or not (the recomputation relies on it). pre and y must
	// not alias x or each other.
	GroupNormSiLU(x, gamma, beta, bias, pre, y, mean, rstd *Tensor, groups int, eps float32)

	// Adam updates p, m, v in place from the gradient g (all the same length).
	Adam(p, g, m, v *Tensor, a AdamArgs)
}
