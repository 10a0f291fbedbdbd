package flow

import (
	"fmt"
	"math/rand/v2"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/internal/pass"
	"github.com/latentad/latentad/internal/rng"
)

// Options are the scores' settings; zero values mean the seed's defaults.
type Options struct {
	Samples    int     // K, the number of (t, z1) draws (default 10)
	TMin, TMax float64 // t ~ U[TMin, TMax) (default [0, 1); the "small" range is [0, 0.3))
	Steps      int     // round_trip steps (default 50)
	Solver     string  // round_trip solver: "euler" (the seed's, default), "heun" or "rk4"
	Seed       uint64
}

// WithDefaults fills zero fields with the seed's defaults.
func (o Options) WithDefaults() Options {
	if o.Samples == 0 {
		o.Samples = 10
	}
	if o.TMin == 0 && o.TMax == 0 {
		o.TMax = 1
	}
	if o.Steps == 0 {
		o.Steps = 50
	}
	if o.Solver == "" {
		o.Solver = "euler"
	}
	return o
}

// Validate reports settings no score can use.
func (o Options) Validate() error {
	o = o.WithDefaults()
	switch {
	case o.Samples < 1:
		return fmt.Errorf("n_samples must be at least 1, got %d", o.Samples)
	case o.TMin < 0 || o.TMax > 1 || o.TMin >= o.TMax:
		return fmt.Errorf("t range [%g, %g) must satisfy 0 ≤ t_min < t_max ≤ 1", o.TMin, o.TMax)
	case o.Steps < 1:
		return fmt.Errorf("n_steps must be at least 1, got %d", o.Steps)
	}
	switch o.Solver {
	case "euler", "heun", "rk4":
	default:
		return fmt.Errorf("unknown solver %q (want euler, heun or rk4)", o.Solver)
	}
	return nil
}

// Scorer computes anomaly scores with a trained velocity model. Higher is more anomalous.
//
// Each method takes z (B, C, D, H, W) and idx, the samples' indices in the whole cohort:
// sample i draws its t and z1 from the stream (seed, i), so scores depend neither on the
// batch size nor on how a cohort is split into shards. When maps is not nil (shape
// (B, 1, D, H, W)) it receives the per-voxel quantity the score averages, averaged over
// channels and draws only, so each map's mean equals its score.
type Scorer struct {
	dev   compute.Device
	model Model
	w     pass.Work
}

// NewScorer returns a Scorer for model on dev.
func NewScorer(dev compute.Device, model Model) *Scorer { return &Scorer{dev: dev, model: model} }

// Release frees the scorer's buffers.
func (s *Scorer) Release() { s.w.Release(s.dev) }

// draw fills t and the host noise from each sample's stream: t first, then z1.
func draw(streams []*rand.Rand, t, noise []float32, lo, hi float64) {
	n := len(noise) / len(t)
	for b, r := range streams {
		t[b] = rng.Uniform(r, lo, hi)
		rng.Normal(r, noise[b*n:(b+1)*n])
	}
}

// MSEMultiT is the seed's recommended score: the mean over K draws of
// mean((v(z_t, t) - (z1 - z))²), t ~ U[TMin, TMax), z1 ~ N(0, I).
func (s *Scorer) MSEMultiT(z *compute.Tensor, idx []int, o Options, maps *compute.Tensor) []float64 {
	o = o.WithDefaults()
	dev, w := s.dev, &s.w
	w.Ensure(dev, z.Shape())
	m := w.MapScratch(dev, maps)
	streams := pass.Streams(o.Seed, idx)
	t := make([]float32, z.Dim(0))
	dev.Fill(w.Acc, 0)
	for k := 0; k < o.Samples; k++ {
		draw(streams, t, w.Host, o.TMin, o.TMax)
		dev.Upload(w.Noise, w.Host)
		lerp(dev, w, z, t)
		dev.AXPBY(1, w.Noise, -1, z, w.U)
		dev.SqDiff(s.model.Forward(w.Zt, t), w.U, w.Sq)
		w.Accumulate(dev, 1/float32(o.Samples), maps, m)
	}
	return pass.Float64s(compute.ToHost(w.Acc))
}

// VelocityInconsistency draws K pairs (t, z1) as MSEMultiT does and scores the unbiased
// variance (K-1) of the K predicted velocities, per element, averaged over elements.
// K must be at least 2.
func (s *Scorer) VelocityInconsistency(z *compute.Tensor, idx []int, o Options, maps *compute.Tensor) ([]float64, error) {
	o = o.WithDefaults()
	if o.Samples < 2 {
		return nil, fmt.Errorf("velocity_inconsistency needs n_samples ≥ 2 for a variance, got %d", o.Samples)
	}
	dev, w := s.dev, &s.w
	w.Ensure(dev, z.Shape())
	m := w.MapScratch(dev, maps)
	sc := w.Extra(dev, 2)
	mean, m2 := sc[0], sc[1]
	dev.Fill(mean, 0)
	dev.Fill(m2, 0)
	streams := pass.Streams(o.Seed, idx)
	t := make([]float32, z.Dim(0))
	for k := 1; k <= o.Samples; k++ {
		draw(streams, t, w.Host, o.TMin, o.TMax)
		dev.Upload(w.Noise, w.Host)
		lerp(dev, w, z, t)
		dev.Welford(s.model.Forward(w.Zt, t), mean, m2, k)
	}
	dev.AXPBY(1/float32(o.Samples-1), m2, 0, m2, w.Sq)
	dev.Fill(w.Acc, 0)
	w.Accumulate(dev, 1, maps, m)
	return pass.Float64s(compute.ToHost(w.Acc)), nil
}

// RoundTrip integrates dz/dt = v(z, t) from t = 0 to 1 and back in Steps steps and scores
// mean((z - z_back)²). With the seed's Euler solver the forward step i uses t = i·dt and the
// backward step t = 1 - i·dt; Heun and RK4 are more accurate options. Deterministic.
func (s *Scorer) RoundTrip(z *compute.Tensor, o Options, maps *compute.Tensor) []float64 {
	o = o.WithDefaults()
	dev, w := s.dev, &s.w
	w.Ensure(dev, z.Shape())
	m := w.MapScratch(dev, maps)
	x := w.Zt
	dev.Copy(x, z)
	dt := 1 / float32(o.Steps)
	tv := make([]float32, z.Dim(0))
	v := func(x *compute.Tensor, t float32) *compute.Tensor {
		for i := range tv {
			tv[i] = t
		}
		return s.model.Forward(x, tv)
	}
	for _, back := range []bool{false, true} {
		for i := 0; i < o.Steps; i++ {
			t0, h := float32(i)*dt, dt
			if back {
				t0, h = 1-float32(i)*dt, -dt
			}
			switch o.Solver {
			case "euler":
				dev.AXPY(h, v(x, t0), x)
			case "heun":
				sc := w.Extra(dev, 2)
				k1, xp := sc[0], sc[1]
				dev.Copy(k1, v(x, t0))
				dev.AXPBY(1, x, h, k1, xp)
				k2 := v(xp, t0+h)
				dev.AXPY(h/2, k1, x)
				dev.AXPY(h/2, k2, x)
			case "rk4":
				sc := w.Extra(dev, 3)
				sum, xp, k := sc[0], sc[1], sc[2]
				dev.Copy(sum, v(x, t0))
				dev.AXPBY(1, x, h/2, sum, xp)
				dev.Copy(k, v(xp, t0+h/2))
				dev.AXPY(2, k, sum)
				dev.AXPBY(1, x, h/2, k, xp)
				dev.Copy(k, v(xp, t0+h/2))
				dev.AXPY(2, k, sum)
				dev.AXPBY(1, x, h, k, xp)
				dev.AXPY(1, v(xp, t0+h), sum)
				dev.AXPY(h/6, sum, x)
			}
		}
	}
	dev.SqDiff(z, x, w.Sq)
	dev.Fill(w.Acc, 0)
	w.Accumulate(dev, 1, maps, m)
	return pass.Float64s(compute.ToHost(w.Acc))
}
