package nn

import (
	"fmt"
	"math"

	"github.com/latentad/latentad/compute"
)

// Adam is torch.optim.Adam (not AdamW, no amsgrad) with PyTorch 1.13's single-tensor
// semantics, run as one fused Device.Adam over a ParamSet's flat tensors. The
// hyper-parameters may be changed between steps.
type Adam struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64

	dev  compute.Device
	ps   *ParamSet
	m, v *compute.Tensor // exp_avg, exp_avg_sq, laid out like ps.Value
	step int
}

// NewAdam returns an optimiser over ps with betas 0.9/0.999, eps 1e-8 and no weight decay
// (PyTorch's defaults) and zero state.
func NewAdam(dev compute.Device, ps *ParamSet, lr float64) *Adam {
	n := ps.Count()
	return &Adam{
		LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		dev: dev, ps: ps, m: dev.Alloc(n), v: dev.Alloc(n),
	}
}

// Step applies one update from the current gradients.
func (a *Adam) Step() {
	a.step++
	a.dev.Adam(a.ps.Value, a.ps.Grad, a.m, a.v, a.args())
}

// args computes the step's scalars in float64 as PyTorch does in Python, rounded once.
func (a *Adam) args() compute.AdamArgs {
	s := float64(a.step)
	bc1 := 1 - math.Pow(a.Beta1, s)
	bc2 := 1 - math.Pow(a.Beta2, s)
	return compute.AdamArgs{
		Beta1: float32(a.Beta1), Beta2: float32(a.Beta2),
		Eps: float32(a.Eps), WeightDecay: float32(a.WeightDecay),
		StepSize: float32(a.LR / bc1), BC2Sqrt: float32(math.Sqrt(bc2)),
	}
}

// Steps returns the number of steps taken (PyTorch's state "step").
func (a *Adam) Steps() int { return a.step }

// State returns the step count and the first and second moments per parameter name
// (PyTorch's exp_avg and exp_avg_sq).
func (a *Adam) State() (step int, expAvg, expAvgSq map[string]compute.Array) {
	return a.step, a.ps.split(a.m), a.ps.split(a.v)
}

// StateView is State for reading at once: the moments may alias the optimiser's own
// buffers (see ParamSet.StateView).
func (a *Adam) StateView() (step int, expAvg, expAvgSq map[string]compute.Array) {
	return a.step, a.ps.view(a.m), a.ps.view(a.v)
}

// LoadState restores a state written by State (or converted from a PyTorch optimiser
// state dict). Nothing changes unless every key and shape matches the parameters.
func (a *Adam) LoadState(step int, expAvg, expAvgSq map[string]compute.Array) error {
	if step < 0 {
		return fmt.Errorf("optimiser state: step %d is negative", step)
	}
	m, err := a.ps.join(expAvg, "optimiser state exp_avg")
	if err != nil {
		return err
	}
	v, err := a.ps.join(expAvgSq, "optimiser state exp_avg_sq")
	if err != nil {
		return err
	}
	for i, x := range v {
		if x < 0 || math.IsNaN(float64(x)) {
			return fmt.Errorf("optimiser state exp_avg_sq holds %v at flat index %d; a second moment is never negative (corrupt state?)", x, i)
		}
	}
	a.dev.Upload(a.m, m)
	a.dev.Upload(a.v, v)
	a.step = step
	return nil
}

// Release frees the optimiser state.
func (a *Adam) Release() {
	a.dev.Release(a.m)
	a.dev.Release(a.v)
}
