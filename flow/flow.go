// Package flow is the flow-matching side of latentad (SPEC §3): the training loss on
// straight paths z_t = (1-t)·z0 + t·z1 (t = 0 data, t = 1 noise) and the anomaly scores
// mse_multi_t, velocity_inconsistency and round_trip, each with a per-voxel map whose mean
// is the score.
package flow

import (
	"math/rand/v2"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/internal/pass"
	"github.com/latentad/latentad/internal/rng"
)

// Model is the velocity network; *nn.Velocity satisfies it.
type Model = pass.Model

// Trainer computes the flow-matching loss of a batch and the model's gradients.
type Trainer struct {
	dev   compute.Device
	model Model
	w     pass.Work
}

// NewTrainer returns a Trainer for model on dev.
func NewTrainer(dev compute.Device, model Model) *Trainer { return &Trainer{dev: dev, model: model} }

// Step draws t ~ U[0,1) per sample, then z1 ~ N(0, I), from r, computes
// loss = mean((v(z_t, t) - (z1 - z0))²) over all elements, and leaves dloss/dθ in the
// model's parameter gradients. It returns the loss. z0 is overwritten (it serves as the
// gradient buffer once z_t and the target are made).
func (tr *Trainer) Step(z0 *compute.Tensor, r *rand.Rand) float64 {
	dev, w := tr.dev, &tr.w
	w.EnsureStep(dev, z0.Shape())
	t := make([]float32, z0.Dim(0))
	for i := range t {
		t[i] = rng.Uniform(r, 0, 1)
	}
	w.UploadNormal(dev, r)
	lerp(dev, w, z0, t)
	// The target z1 - z0 goes in place of z1; z0, dead from here on, takes the gradient.
	dev.AXPBY(1, w.Noise, -1, z0, w.Noise)
	loss := w.MSE(dev, tr.model.Forward(w.Zt, t), w.Noise, z0)
	tr.model.Backward(z0)
	return loss
}

// Release frees the trainer's buffers.
func (tr *Trainer) Release() { tr.w.Release(tr.dev) }

// lerp sets w.Zt = (1-t)·z0 + t·w.Noise per sample.
func lerp(dev compute.Device, w *pass.Work, z0 *compute.Tensor, t []float32) {
	a := make([]float32, len(t))
	for i, v := range t {
		a[i] = 1 - v
	}
	w.UploadWeights(dev, a, t)
	dev.AXPBYSample(w.A, z0, w.B, w.Noise, w.Zt)
}
