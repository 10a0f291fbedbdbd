// Package pass holds what the flow-matching and DDPM passes share: the per-batch device
// buffers, reused while the batch shape stays, the MSE with its gradient, and per-sample
// random streams.
package pass

import (
	"math/rand/v2"
	"slices"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/internal/rng"
)

// Model is what the passes need of a network that maps (z, t) to a tensor of z's shape;
// *nn.Velocity satisfies it. Forward's result belongs to the model and is valid until the
// next Forward; Backward overwrites the parameter gradients.
type Model interface {
	Forward(z *compute.Tensor, t []float32) *compute.Tensor
	Backward(dv *compute.Tensor)
}

// Work is the scratch of one batch shape. Ensure gives the scorers everything; EnsureStep
// gives a training step only what it needs (Zt and Noise), because a training run holds
// its Work next to the model's activations for its whole life.
type Work struct {
	Shape            []int
	Zt, Noise, U, Sq *compute.Tensor // batch-shaped (U and Sq: Ensure only)
	A, B, Per, Acc   *compute.Tensor // (B)
	Host             []float32       // batch-sized host staging for noise (Ensure only)
	step             bool            // allocated by EnsureStep
	chunk            []float32       // UploadNormal's host staging
	extra            []*compute.Tensor
	mapT             *compute.Tensor
}

// Ensure (re)allocates the scoring buffers for shape.
func (w *Work) Ensure(dev compute.Device, shape []int) {
	if w.Zt != nil && !w.step && slices.Equal(w.Shape, shape) {
		return
	}
	w.Release(dev)
	w.Shape = slices.Clone(shape)
	w.Zt, w.Noise, w.U, w.Sq = dev.Alloc(shape...), dev.Alloc(shape...), dev.Alloc(shape...), dev.Alloc(shape...)
	n := shape[0]
	w.A, w.B, w.Per, w.Acc = dev.Alloc(n), dev.Alloc(n), dev.Alloc(n), dev.Alloc(n)
	w.Host = make([]float32, compute.Numel(shape))
}

// EnsureStep (re)allocates a training step's buffers for shape: Zt, Noise, A, B and Per.
// A step keeps its target in Noise (flow matching turns z1 into z1 - z0 in place), its
// gradient in the batch z0 (dead once Zt and the target are made) and MSE's squared
// differences in the target, so it needs no U, Sq or gradient buffer.
func (w *Work) EnsureStep(dev compute.Device, shape []int) {
	if w.Zt != nil && w.step && slices.Equal(w.Shape, shape) {
		return
	}
	w.Release(dev)
	w.Shape = slices.Clone(shape)
	w.step = true
	w.Zt, w.Noise = dev.Alloc(shape...), dev.Alloc(shape...)
	n := shape[0]
	w.A, w.B, w.Per = dev.Alloc(n), dev.Alloc(n), dev.Alloc(n)
}

// normalChunk is how many normal draws UploadNormal stages on the host at a time (256 KiB).
const normalChunk = 1 << 16

// UploadNormal fills w.Noise with N(0, 1) draws from r in element order, the same values
// as rng.Normal over the whole batch, staged through a small host chunk instead of a
// batch-sized copy.
func (w *Work) UploadNormal(dev compute.Device, r *rand.Rand) {
	n := w.Noise.Len()
	if len(w.chunk) < min(n, normalChunk) {
		w.chunk = make([]float32, min(n, normalChunk))
	}
	for off := 0; off < n; off += normalChunk {
		c := w.chunk[:min(normalChunk, n-off)]
		rng.Normal(r, c)
		dev.Upload(w.Noise.View(off, len(c)), c)
	}
}

// Extra returns n more batch-shaped tensors, kept until the shape changes.
func (w *Work) Extra(dev compute.Device, n int) []*compute.Tensor {
	for len(w.extra) < n {
		w.extra = append(w.extra, dev.Alloc(w.Shape...))
	}
	return w.extra[:n]
}

// Release frees every buffer.
func (w *Work) Release(dev compute.Device) {
	for _, t := range append([]*compute.Tensor{w.Zt, w.Noise, w.U, w.Sq, w.A, w.B, w.Per, w.Acc, w.mapT}, w.extra...) {
		if t != nil {
			dev.Release(t)
		}
	}
	*w = Work{chunk: w.chunk}
}

// MapScratch zero-fills maps and returns a scratch tensor of its shape for Accumulate;
// it returns nil when maps is nil (no maps wanted).
func (w *Work) MapScratch(dev compute.Device, maps *compute.Tensor) *compute.Tensor {
	if maps == nil {
		return nil
	}
	if w.mapT == nil || !slices.Equal(w.mapT.Shape(), maps.Shape()) {
		if w.mapT != nil {
			dev.Release(w.mapT)
		}
		w.mapT = dev.Alloc(maps.Shape()...)
	}
	dev.Fill(maps, 0)
	return w.mapT
}

// UploadWeights uploads per-sample weights a and b (for AXPBYSample).
func (w *Work) UploadWeights(dev compute.Device, a, b []float32) {
	dev.Upload(w.A, a)
	dev.Upload(w.B, b)
}

// MSE returns mean((pred-target)²) over all elements and writes its gradient
// 2(pred-target)/n into grad; it then overwrites target with the squared differences,
// which saves a batch-sized buffer (no caller needs the target afterwards). The per-sample
// means are summed on the host in float64.
func (w *Work) MSE(dev compute.Device, pred, target, grad *compute.Tensor) float64 {
	n := float32(pred.Len())
	dev.AXPBY(2/n, pred, -2/n, target, grad)
	dev.SqDiff(pred, target, target)
	dev.MeanSample(target, w.Per)
	h := compute.ToHost(w.Per)
	var s float64
	for _, v := range h {
		s += float64(v)
	}
	return s / float64(len(h))
}

// Accumulate adds inv·(per-sample mean of w.Sq) to w.Acc and, when maps is not nil,
// inv·(channel mean of w.Sq) to maps, using m as map scratch.
func (w *Work) Accumulate(dev compute.Device, inv float32, maps, m *compute.Tensor) {
	dev.MeanSample(w.Sq, w.Per)
	dev.AXPY(inv, w.Per, w.Acc)
	if maps != nil {
		dev.MeanChannels(w.Sq, m)
		dev.AXPY(inv, m, maps)
	}
}

// Streams returns one generator per sample, keyed by the sample's index in the cohort, so
// that scores do not depend on batch size or sharding.
func Streams(seed uint64, idx []int) []*rand.Rand {
	out := make([]*rand.Rand, len(idx))
	for i, j := range idx {
		out[i] = rng.New(seed, uint64(j))
	}
	return out
}

// Float64s converts device read-backs to float64.
func Float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
