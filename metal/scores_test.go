package metal

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/ddpm"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/flow"
	"github.com/latentad/latentad/nn"
)

// scoresOn computes every anomaly score of SPEC §3–4 for a fixed batch of latents with a
// small velocity model built from a fixed seed.
func scoresOn(t *testing.T, dev compute.Device) map[string][]float64 {
	t.Helper()
	m, err := nn.NewVelocity(dev, nn.VelocityConfig{InChannels: 4, BaseChannels: 16, TimeDim: 8, NumResBlocks: 1}, 42)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	shape := []int{3, 4, 2, 3, 4}
	z := compute.FromHost(dev, randn(rand.New(rand.NewPCG(5, 6)), compute.Numel(shape)), shape...)
	idx := []int{0, 1, 2}
	out := map[string][]float64{}
	fs := flow.NewScorer(dev, m)
	defer fs.Release()
	o := flow.Options{Samples: 3, Seed: 7, Steps: 4}
	out["mse_multi_t"] = fs.MSEMultiT(z, idx, o, nil)
	if out["velocity_inconsistency"], err = fs.VelocityInconsistency(z, idx, o, nil); err != nil {
		t.Fatal(err)
	}
	out["round_trip"] = fs.RoundTrip(z, o, nil)
	sch, err := ddpm.NewSchedule("cosine", 1000)
	if err != nil {
		t.Fatal(err)
	}
	ds := ddpm.NewScorer(dev, m, sch)
	defer ds.Release()
	if out["ddpm_small_t"], err = ds.Score(z, idx, ddpm.Options{Samples: 3, TMax: 100, Seed: 7}, nil); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScoresMatchCPU: with the same seed every score on Metal equals the CPU backend's.
// All random numbers come from the host, so the only differences are float32 summation
// orders inside the model (below 1e-5 of the output's RMS, see TestVelocityMatchesCPU);
// a score, a mean of squared differences of such outputs, then agrees to a relative 1e-4
// (measured: 3e-6).
func TestScoresMatchCPU(t *testing.T) {
	gpu := scoresOn(t, New(newDriver(t)))
	cpu := scoresOn(t, fallback.New())
	worst := 0.0
	for name, want := range cpu {
		got := gpu[name]
		if len(got) != len(want) {
			t.Fatalf("%s: %d scores, want %d", name, len(got), len(want))
		}
		for i := range want {
			d := math.Abs(got[i]-want[i]) / math.Abs(want[i])
			worst = max(worst, d)
			if !(d <= 1e-4) {
				t.Errorf("%s[%d] = %v on Metal, %v on the CPU (relative %.3g)", name, i, got[i], want[i], d)
			}
		}
	}
	t.Logf("largest relative difference between the backends' scores: %.2g", worst)
}
