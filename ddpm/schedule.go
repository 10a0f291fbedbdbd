// Package ddpm is the denoising-diffusion side of latentad (SPEC §4): noise schedules, the
// ε-prediction training loss, and the anomaly scores ddpm and ddpm_small_t.
package ddpm

import (
	"fmt"
	"math"
)

// Schedule is a DDPM noise schedule over T steps. Values are float32, computed with the same
// sequence of float32 operations as PyTorch's (torch's default dtype), so that betas and
// cumulative alphas equal the seed's to round-off.
type Schedule struct {
	Type      string // "linear" or "cosine"
	Timesteps int
	Betas     []float32
	Alphas    []float32
	AlphaBar  []float32 // cumulative product of Alphas
}

// NewSchedule builds the linear (β = linspace(1e-4, 0.02, T)) or cosine (Nichol & Dhariwal,
// s = 0.008, β clipped to [1e-4, 0.9999]) schedule.
func NewSchedule(kind string, timesteps int) (*Schedule, error) {
	if timesteps < 1 {
		return nil, fmt.Errorf("ddpm: timesteps must be at least 1, got %d", timesteps)
	}
	T := timesteps
	betas := make([]float32, T)
	switch kind {
	case "linear":
		linspace32(betas, 1e-4, 0.02)
	case "cosine":
		const s = 0.008
		ab := make([]float32, T+1)
		x := make([]float32, T+1)
		linspace32(x, 0, float64(T))
		for i := range ab {
			// ((x/T) + s) / (1 + s) · π · 0.5, each step a float32 op as in PyTorch.
			v := x[i] / float32(T)
			v += float32(s)
			v /= float32(1 + s)
			v *= float32(math.Pi)
			v *= 0.5
			c := float32(math.Cos(float64(v)))
			ab[i] = c * c
		}
		a0 := ab[0]
		for i := range ab {
			ab[i] /= a0
		}
		for i := range betas {
			b := 1 - ab[i+1]/ab[i]
			betas[i] = min(max(b, 1e-4), 0.9999)
		}
	default:
		return nil, fmt.Errorf("ddpm: unknown schedule type %q (want linear or cosine)", kind)
	}
	sch := &Schedule{Type: kind, Timesteps: T, Betas: betas, Alphas: make([]float32, T), AlphaBar: make([]float32, T)}
	prod := float32(1)
	for i, b := range betas {
		sch.Alphas[i] = 1 - b
		prod *= sch.Alphas[i]
		sch.AlphaBar[i] = prod
	}
	return sch, nil
}

// linspace32 fills out like torch.linspace(start, end, len(out)) in float32: PyTorch steps
// from the start for the first half and from the end for the second half.
func linspace32(out []float32, start, end float64) {
	n := len(out)
	if n == 1 {
		out[0] = float32(start)
		return
	}
	step := float32((end - start) / float64(n-1))
	s, e := float32(start), float32(end)
	half := n / 2
	for i := range out {
		if i < half {
			out[i] = s + step*float32(i)
		} else {
			out[i] = e - step*float32(n-1-i)
		}
	}
}
