package pass

import (
	"math"
	"slices"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/internal/rng"
)

// TestUploadNormalMatchesOneDraw: the chunked upload gives the values rng.Normal gives over
// the whole batch at once (the chunk boundary falls inside a sample here).
func TestUploadNormalMatchesOneDraw(t *testing.T) {
	dev := fallback.New()
	shape := []int{3, normalChunk/2 + 7}
	var w Work
	w.EnsureStep(dev, shape)
	defer w.Release(dev)
	w.UploadNormal(dev, rng.New(4, 2))
	want := make([]float32, compute.Numel(shape))
	rng.Normal(rng.New(4, 2), want)
	if !slices.Equal(compute.ToHost(w.Noise), want) {
		t.Error("UploadNormal differs from one rng.Normal over the batch")
	}
}

// TestMSEOverwritesTarget: the loss and gradient are those of mean((p-t)²), and the target
// ends as the squared differences.
func TestMSEOverwritesTarget(t *testing.T) {
	dev := fallback.New()
	p := []float32{1, -2, 0.5, 3, 0, 4}
	q := []float32{0.5, 1, 0.5, -1, 2, 4}
	var w Work
	w.EnsureStep(dev, []int{2, 3})
	defer w.Release(dev)
	pred, target, grad := compute.FromHost(dev, p, 2, 3), compute.FromHost(dev, q, 2, 3), dev.Alloc(2, 3)
	loss := w.MSE(dev, pred, target, grad)
	var sum float64
	sq := make([]float32, len(p))
	for i := range p {
		d := p[i] - q[i]
		sq[i] = d * d
		sum += float64(sq[i])
	}
	if want := sum / 6; math.Abs(loss-want) > 1e-7*want {
		t.Errorf("loss %v, want %v", loss, want)
	}
	if !slices.Equal(compute.ToHost(target), sq) {
		t.Errorf("target after MSE: %v, want the squared differences %v", compute.ToHost(target), sq)
	}
	for i, v := range compute.ToHost(grad) {
		if want := (float64(p[i]) - float64(q[i])) / 3; math.Abs(float64(v)-want) > 1e-6 {
			t.Errorf("gradient[%d] = %v, want %v", i, v, want)
		}
	}
}
