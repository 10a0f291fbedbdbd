// Package devicetest is the conformance suite every compute.Device backend runs: each op on
// edge shapes, compared against float64 reference implementations written plainly from the
// op definitions in compute/device.go (those references are the specification).
//
// Every operand is a view at a non-zero offset inside a larger buffer whose margins hold
// NaN and huge sentinels: reading outside a view shows up in a result, writing outside it
// as a changed margin. Outputs start as NaN too, so an op that accumulates into an output it
// should overwrite fails. Inputs must come back unchanged.
//
// Tolerances are relative to a magnitude computed alongside each reference value (for a sum
// of L products, Σ|terms|), scaled by the float32 unit roundoff u = 2⁻²⁴ and by how many
// roundings a float32 evaluation may accumulate; each check states its reason.
//
// Where compute/device.go leaves room, the suite fixes the PyTorch-consistent reading:
//   - Gemm with beta = 0 does not read C (NaN there does not propagate), as BLAS and
//     torch.addmm;
//   - Adam's complements 1-β are PyTorch's: Python forms 1-beta in double precision from
//     the decimal the user wrote (1-0.999 = 0.001), then the kernel rounds it to float32;
//     1-float32(0.999) is 200 ulps away. A backend computes them on the host:
//     β64 = strconv.ParseFloat(strconv.FormatFloat(float64(β), 'g', -1, 32), 64), then
//     float32(1 - β64);
//   - ReLU's backward passes the gradient only where x > 0 (0 at x = 0), as torch's
//     threshold_backward;
//   - every output, dw and db included, is overwritten, never accumulated into;
//   - Welford starts, at k = 1, from zero-filled mean and M2.
//
// Usage, in a backend's test:
//
//	func TestConformance(t *testing.T) { devicetest.Run(t, mybackend.New()) }
package devicetest

import (
	"testing"

	"github.com/latentad/latentad/compute"
)

// Options selects what RunOpts covers.
type Options struct {
	// Small keeps one or two shapes per op (the edge cases that matter most) for slow
	// backends such as an emulator. The default covers everything.
	Small bool
}

// Run runs the whole conformance suite on dev.
func Run(t *testing.T, dev compute.Device) { RunOpts(t, dev, Options{}) }

// RunOpts runs the conformance suite on dev with options. Each op family is a subtest
// (Basics, Elementwise, Activations, Broadcast, Reductions, Welford, Gemm, Conv3d,
// GroupNorm, GroupNormSiLU, Adam), each shape a subtest of its own, so `go test -run` can
// pick one.
func RunOpts(t *testing.T, dev compute.Device, o Options) {
	t.Run("Basics", func(t *testing.T) { testBasics(t, dev) })
	t.Run("Elementwise", func(t *testing.T) { testElementwise(t, dev, o) })
	t.Run("Activations", func(t *testing.T) { testActivations(t, dev, o) })
	t.Run("Broadcast", func(t *testing.T) { testBroadcast(t, dev, o) })
	t.Run("Reductions", func(t *testing.T) { testReductions(t, dev, o) })
	t.Run("Welford", func(t *testing.T) { testWelford(t, dev, o) })
	t.Run("Gemm", func(t *testing.T) { testGemm(t, dev, o) })
	t.Run("Conv3d", func(t *testing.T) { testConv(t, dev, o) })
	t.Run("GroupNorm", func(t *testing.T) { testGroupNorm(t, dev, o) })
	t.Run("GroupNormSiLU", func(t *testing.T) { testGroupNormSiLU(t, dev, o) })
	t.Run("Adam", func(t *testing.T) { testAdam(t, dev, o) })
	if err := dev.Sync(); err != nil {
		t.Errorf("Sync after the suite: %v", err)
	}
}
