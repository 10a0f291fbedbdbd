package ddpm

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/internal/pass"
	"github.com/latentad/latentad/internal/rng"
)

// Model is the ε-prediction network (the same LatentVelocityEstimator); *nn.Velocity
// satisfies it. Its time input is t/T.
type Model = pass.Model

// noisy sets w.Zt = sqrt(ᾱ_t)·z0 + sqrt(1-ᾱ_t)·w.Noise per sample and returns the
// model's time inputs t/T.
func (s *Schedule) noisy(dev compute.Device, w *pass.Work, z0 *compute.Tensor, steps []int) []float32 {
	a := make([]float32, len(steps))
	b := make([]float32, len(steps))
	tin := make([]float32, len(steps))
	for i, t := range steps {
		ab := float64(s.AlphaBar[t])
		a[i] = float32(math.Sqrt(ab))
		b[i] = float32(math.Sqrt(1 - ab))
		tin[i] = float32(t) / float32(s.Timesteps)
	}
	w.UploadWeights(dev, a, b)
	dev.AXPBYSample(w.A, z0, w.B, w.Noise, w.Zt)
	return tin
}

// Trainer computes the DDPM ε-prediction loss of a batch and the model's gradients.
type Trainer struct {
	dev   compute.Device
	model Model
	sch   *Schedule
	w     pass.Work
}

// NewTrainer returns a Trainer for model on dev with schedule sch.
func NewTrainer(dev compute.Device, model Model, sch *Schedule) *Trainer {
	return &Trainer{dev: dev, model: model, sch: sch}
}

// Step draws t ~ randint[0, T) per sample, then ε ~ N(0, I), from r, computes
// loss = mean((ε̂(z_t, t/T) - ε)²), and leaves the gradients in the model. It returns the loss.
// z0 is overwritten (it serves as the gradient buffer once z_t is made).
func (tr *Trainer) Step(z0 *compute.Tensor, r *rand.Rand) float64 {
	dev, w := tr.dev, &tr.w
	w.EnsureStep(dev, z0.Shape())
	steps := make([]int, z0.Dim(0))
	for i := range steps {
		steps[i] = r.IntN(tr.sch.Timesteps)
	}
	w.UploadNormal(dev, r)
	tin := tr.sch.noisy(dev, w, z0, steps)
	// z0, dead from here on, takes the gradient.
	loss := w.MSE(dev, tr.model.Forward(w.Zt, tin), w.Noise, z0)
	tr.model.Backward(z0)
	return loss
}

// Release frees the trainer's buffers.
func (tr *Trainer) Release() { tr.w.Release(tr.dev) }

// Options are the DDPM scores' settings.
type Options struct {
	Samples int // K draws (default 10)
	// TMax limits t to randint[0, min(TMax, T)) — the ddpm_small_t score (default 100 there);
	// 0 means the full range (the ddpm score).
	TMax int
	Seed uint64
}

// Scorer computes the DDPM anomaly scores. Like flow.Scorer, sample i draws from the stream
// (seed, i), and maps (B, 1, D, H, W), when not nil, receive the per-voxel error averaged
// over channels and draws, whose mean is the score.
type Scorer struct {
	dev   compute.Device
	model Model
	sch   *Schedule
	w     pass.Work
}

// NewScorer returns a Scorer.
func NewScorer(dev compute.Device, model Model, sch *Schedule) *Scorer {
	return &Scorer{dev: dev, model: model, sch: sch}
}

// Release frees the scorer's buffers.
func (s *Scorer) Release() { s.w.Release(s.dev) }

// Score is the mean over K draws of mean((ε̂(z_t, t/T) - ε)²), t ~ randint[0, T') with
// T' = min(TMax, T) when TMax > 0 (ddpm_small_t) and T' = T otherwise (ddpm).
func (s *Scorer) Score(z *compute.Tensor, idx []int, o Options, maps *compute.Tensor) ([]float64, error) {
	if o.Samples == 0 {
		o.Samples = 10
	}
	if o.Samples < 1 || o.TMax < 0 {
		return nil, fmt.Errorf("ddpm score: n_samples must be ≥ 1 and t_small ≥ 0, got %d and %d", o.Samples, o.TMax)
	}
	T := s.sch.Timesteps
	if o.TMax > 0 {
		T = min(o.TMax, T)
	}
	dev, w := s.dev, &s.w
	w.Ensure(dev, z.Shape())
	m := w.MapScratch(dev, maps)
	streams := pass.Streams(o.Seed, idx)
	steps := make([]int, z.Dim(0))
	n := z.Len() / z.Dim(0)
	dev.Fill(w.Acc, 0)
	for k := 0; k < o.Samples; k++ {
		for b, r := range streams {
			steps[b] = r.IntN(T)
			rng.Normal(r, w.Host[b*n:(b+1)*n])
		}
		dev.Upload(w.Noise, w.Host)
		tin := s.sch.noisy(dev, w, z, steps)
		dev.SqDiff(s.model.Forward(w.Zt, tin), w.Noise, w.Sq)
		w.Accumulate(dev, 1/float32(o.Samples), maps, m)
	}
	return pass.Float64s(compute.ToHost(w.Acc)), nil
}
