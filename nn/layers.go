package nn

import (
	"slices"

	"github.com/latentad/latentad/compute"
)

// slot is a reusable device buffer: get returns the same tensor while the shape stays the
// same, so a model allocates nothing per step once its input shape is fixed.
type slot struct{ t *compute.Tensor }

func (s *slot) get(dev compute.Device, shape ...int) *compute.Tensor {
	if s.t != nil && slices.Equal(s.t.Shape(), shape) {
		return s.t
	}
	s.release(dev)
	s.t = dev.Alloc(shape...)
	return s.t
}

func (s *slot) release(dev compute.Device) {
	if s.t != nil {
		dev.Release(s.t)
		s.t = nil
	}
}

// pool tracks a model's slots so Release can free them all.
type pool struct{ slots []*slot }

func (p *pool) slot() *slot {
	s := &slot{}
	p.slots = append(p.slots, s)
	return s
}

func (p *pool) release(dev compute.Device) {
	for _, s := range p.slots {
		s.release(dev)
	}
}

// Conv3d is torch.nn.Conv3d with bias: weight (Out, In, kD, kH, kW), bias (Out).
type Conv3d struct {
	W, B *Param
	Conv compute.Conv
}

// newConv3d registers name.weight and name.bias with PyTorch's default initialisation.
func newConv3d(b *builder, name string, in, out, k int, c compute.Conv) *Conv3d {
	bound := kaimingBound(in * k * k * k)
	return &Conv3d{
		W:    b.add(name+".weight", initUniform, bound, out, in, k, k, k),
		B:    b.add(name+".bias", initUniform, bound, out),
		Conv: c,
	}
}

// OutShape is the output shape for an input of shape x.
func (l *Conv3d) OutShape(x []int) []int {
	w := l.W.Value.Shape()
	s := []int{x[0], w[0], 0, 0, 0}
	for i := range 3 {
		s[2+i] = compute.OutSize(x[2+i], w[2+i], l.Conv.Stride[i], l.Conv.Pad[i])
	}
	return s
}

// Forward computes y = conv(x) + bias.
func (l *Conv3d) Forward(dev compute.Device, x, y *compute.Tensor) {
	dev.Conv3d(x, l.W.Value, l.B.Value, y, l.Conv)
}

// Backward overwrites the weight and bias gradients from the forward input x and dL/dy,
// and writes dL/dx into dx unless dx is nil. dx may be x itself: the weight gradient,
// the only reader of x, comes first.
func (l *Conv3d) Backward(dev compute.Device, x, dy, dx *compute.Tensor) {
	dev.Conv3dBackwardWeight(x, dy, l.W.Grad, l.B.Grad, l.Conv)
	if dx != nil {
		dev.Conv3dBackwardData(dy, l.W.Value, dx, l.Conv)
	}
}

// ConvTranspose3d is torch.nn.ConvTranspose3d with bias and no output padding:
// weight (In, Out, kD, kH, kW), bias (Out).
type ConvTranspose3d struct {
	W, B *Param
	Conv compute.Conv
}

// newConvTranspose3d registers name.weight and name.bias; PyTorch computes fan_in from the
// weight's dim 1 (Out here) times the kernel volume, and so do we.
func newConvTranspose3d(b *builder, name string, in, out, k int, c compute.Conv) *ConvTranspose3d {
	bound := kaimingBound(out * k * k * k)
	return &ConvTranspose3d{
		W:    b.add(name+".weight", initUniform, bound, in, out, k, k, k),
		B:    b.add(name+".bias", initUniform, bound, out),
		Conv: c,
	}
}

// OutShape is the output shape for an input of shape x.
func (l *ConvTranspose3d) OutShape(x []int) []int {
	w := l.W.Value.Shape()
	s := []int{x[0], w[1], 0, 0, 0}
	for i := range 3 {
		s[2+i] = compute.TransposedOutSize(x[2+i], w[2+i], l.Conv.Stride[i], l.Conv.Pad[i])
	}
	return s
}

// Forward computes y = convT(x) + bias: the transposed convolution is the data gradient
// of a convolution whose weight (Co=In, Ci=Out, k…) is ours.
func (l *ConvTranspose3d) Forward(dev compute.Device, x, y *compute.Tensor) {
	dev.Conv3dBackwardData(x, l.W.Value, y, l.Conv)
	dev.AddBias(y, l.B.Value)
}

// Backward overwrites the weight and bias gradients from the forward input x and dL/dy,
// and writes dL/dx into dx unless dx is nil. The input gradient is the plain convolution
// of dy; the weight gradient is Conv3dBackwardWeight with the roles of x and dy swapped.
func (l *ConvTranspose3d) Backward(dev compute.Device, x, dy, dx *compute.Tensor) {
	dev.Conv3dBackwardWeight(dy, x, l.W.Grad, nil, l.Conv)
	dev.SumChannels(dy, l.B.Grad)
	if dx != nil {
		dev.Conv3d(dy, l.W.Value, nil, dx, l.Conv)
	}
}

// GroupNorm is torch.nn.GroupNorm(groups, C, eps, affine=True).
type GroupNorm struct {
	Gamma, Beta *Param
	Groups      int
	Eps         float32
	mean, rstd  *slot
}

// Every GroupNorm in the seed has 8 groups and eps 1e-5.
const (
	normGroups = 8
	normEps    = 1e-5
)

func newGroupNorm(b *builder, p *pool, name string, c int) *GroupNorm {
	return &GroupNorm{
		Gamma:  b.add(name+".weight", initOnes, 0, c),
		Beta:   b.add(name+".bias", initZeros, 0, c),
		Groups: normGroups,
		Eps:    normEps,
		mean:   p.slot(),
		rstd:   p.slot(),
	}
}

// Forward normalises x into y and keeps the statistics for Backward.
func (l *GroupNorm) Forward(dev compute.Device, x, y *compute.Tensor) {
	n := x.Dim(0)
	mean := l.mean.get(dev, n, l.Groups)
	rstd := l.rstd.get(dev, n, l.Groups)
	dev.GroupNormForward(x, l.Gamma.Value, l.Beta.Value, y, mean, rstd, l.Groups, l.Eps)
}

// ForwardSiLU normalises x and applies SiLU and, unless bias is nil, the per-sample bias
// (N, C) in one device op: y = SiLU(GroupNorm(x)) + bias. The normalised values go to pre
// unless it is nil. The statistics are kept for Backward as by Forward.
func (l *GroupNorm) ForwardSiLU(dev compute.Device, x, bias, pre, y *compute.Tensor) {
	n := x.Dim(0)
	mean := l.mean.get(dev, n, l.Groups)
	rstd := l.rstd.get(dev, n, l.Groups)
	dev.GroupNormSiLU(x, l.Gamma.Value, l.Beta.Value, bias, pre, y, mean, rstd, l.Groups, l.Eps)
}

// Backward overwrites the affine gradients and writes dL/dx into dx, from the input x of
// the last Forward.
func (l *GroupNorm) Backward(dev compute.Device, x, dy, dx *compute.Tensor) {
	dev.GroupNormBackward(x, dy, l.Gamma.Value, l.mean.t, l.rstd.t, dx, l.Gamma.Grad, l.Beta.Grad, l.Groups)
}

// Linear is torch.nn.Linear with bias: weight (Out, In), bias (Out), on x (N, In).
type Linear struct {
	W, B *Param
}

func newLinear(b *builder, name string, in, out int) *Linear {
	bound := kaimingBound(in)
	return &Linear{
		W: b.add(name+".weight", initUniform, bound, out, in),
		B: b.add(name+".bias", initUniform, bound, out),
	}
}

// Forward computes y = x·Wᵀ + b.
func (l *Linear) Forward(dev compute.Device, x, y *compute.Tensor) {
	dev.Gemm(false, true, 1, x, l.W.Value, 0, y)
	dev.AddBias(y, l.B.Value)
}

// Backward overwrites dW = dyᵀ·x and db = Σ_n dy, and writes dx = dy·W unless dx is nil.
func (l *Linear) Backward(dev compute.Device, x, dy, dx *compute.Tensor) {
	dev.Gemm(true, false, 1, dy, x, 0, l.W.Grad)
	dev.SumChannels(dy, l.B.Grad)
	if dx != nil {
		dev.Gemm(false, false, 1, dy, l.W.Value, 0, dx)
	}
}
