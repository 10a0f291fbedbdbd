package metal

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/nn"
)

// modelRun is what one backend computes for a small velocity model: the output of a
// forward pass, the loss, every gradient, and the parameters and moments after an Adam step.
type modelRun struct {
	v          []float32
	loss       float64
	grads      map[string]compute.Array
	params     map[string]compute.Array
	expAvg, sq map[string]compute.Array
}

func runModel(t *testing.T, dev compute.Device) modelRun {
	t.Helper()
	cfg := nn.VelocityConfig{InChannels: 4, BaseChannels: 32, TimeDim: 8, NumResBlocks: 2}
	m, err := nn.NewVelocity(dev, cfg, 42)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	shape := []int{2, 4, 3, 4, 5}
	r := rand.New(rand.NewPCG(1, 2))
	z := compute.FromHost(dev, randn(r, compute.Numel(shape)), shape...)
	target := compute.FromHost(dev, randn(r, compute.Numel(shape)), shape...)
	grad := dev.Alloc(shape...)
	opt := nn.NewAdam(dev, m.Params(), 1e-3)
	defer opt.Release()
	var run modelRun
	v := m.Forward(z, []float32{0.25, 0.8})
	run.loss = nn.MSE(dev, v, target, grad)
	m.Backward(grad)
	run.v, run.grads = compute.ToHost(v), m.Params().GradDict()
	opt.Step()
	run.params = m.Params().StateDict()
	_, run.expAvg, run.sq = opt.State()
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
	return run
}

// rms is the root mean square of x.
func rms(x []float32) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(len(x), 1)))
}

// maxRelDiff is max |a-b| / rms(b): differences relative to the tensor's scale, so values
// near zero (which carry only absolute rounding noise) do not dominate.
func maxRelDiff(a, b []float32) float64 {
	scale := rms(b)
	worst := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d/scale)
	}
	return worst
}

// TestVelocityMatchesCPU runs a small LatentVelocityEstimator (2 residual blocks, 32
// channels, odd latent extents) forward, backward and through an Adam step on the Metal
// backend and on the CPU backend from the same seed, and compares everything.
//
// Both backends evaluate in float32 with different summation orders; each op's error is
// below ~1e-5 of its operands' scale (sums of up to 32·27 terms), and a dozen layers
// forward (two dozen backward, through GroupNorm's division by the standard deviation)
// compound it; measured: 3e-6 of the RMS for the output, 1.1e-5 for gradients and
// exp_avg, 4e-5 for exp_avg_sq (a square doubles relative errors). The tolerances, 1e-4
// of each tensor's RMS (2e-4 for exp_avg_sq), leave that margin, while a wrong kernel
// moves values by a sizeable fraction of their RMS.
func TestVelocityMatchesCPU(t *testing.T) {
	gpu := runModel(t, New(newDriver(t)))
	cpu := runModel(t, fallback.New())
	if d := maxRelDiff(gpu.v, cpu.v); d > 1e-4 {
		t.Errorf("forward output differs by %.3g of its RMS", d)
	}
	if d := math.Abs(gpu.loss-cpu.loss) / cpu.loss; d > 1e-5 {
		t.Errorf("loss %v vs %v (relative %.3g)", gpu.loss, cpu.loss, d)
	}
	names := make([]string, 0, len(cpu.grads))
	for k := range cpu.grads {
		names = append(names, k)
	}
	sort.Strings(names)
	worst := map[string]float64{}
	for _, k := range names {
		for what, pair := range map[string][2]map[string]compute.Array{
			"gradient": {gpu.grads, cpu.grads}, "exp_avg": {gpu.expAvg, cpu.expAvg}, "exp_avg_sq": {gpu.sq, cpu.sq},
		} {
			d := maxRelDiff(pair[0][k].Data, pair[1][k].Data)
			worst[what] = max(worst[what], d)
			tol := 1e-4
			if what == "exp_avg_sq" {
				tol = 2e-4
			}
			if d > tol {
				t.Errorf("%s of %s differs by %.3g of its RMS", what, k, d)
			}
		}
		// The first Adam step moves each parameter by lr·g/(|g|+eps) ≈ lr·sign(g): where
		// the gradient is well above rounding noise both backends take the same step, to a
		// few float32 roundings of the parameter (|p| < 1 here, so 2e-7 allows 3 ulps).
		gp, cp, g0 := gpu.params[k].Data, cpu.params[k].Data, cpu.grads[k].Data
		floor := 1e-2 * rms(g0)
		for i := range cp {
			if math.Abs(float64(g0[i])) < floor {
				continue
			}
			if d := math.Abs(float64(gp[i]) - float64(cp[i])); d > 2e-7 || math.IsNaN(d) {
				t.Errorf("parameter %s[%d] after an Adam step: %v vs %v", k, i, gp[i], cp[i])
				break
			}
		}
	}
	t.Logf("worst differences relative to RMS: output %.2g, %v", maxRelDiff(gpu.v, cpu.v), worst)
}
