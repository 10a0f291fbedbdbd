package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
)

// Finite-difference checks of every layer's backward.
//
// The loss is L = Σ r·y for a fixed random r, so dL/dy = r. L is summed in float64 on the
// host from the layer's float32 output, and each derivative is the five-point central
// difference (−L(θ+2h) + 8L(θ+h) − 8L(θ−h) + L(θ−2h)) / 12h with h = 1.5e-2:
//   - truncation error is h⁴·L⁽⁵⁾/30 ≈ 2e-9·L⁽⁵⁾ (zero for the layers that are linear in the
//     perturbed variable: conv, linear); it only matters for GroupNorm over few elements,
//     which is why h is not larger (at h = 5e-2 it reaches 3e-3);
//   - rounding: each output carries float32 rounding ≈ 6e-8·|y|, so L carries
//     σ ≈ 6e-8·√n·|r·y| ≲ 1e-6 for n ≲ 500 outputs, and the stencil amplifies it by
//     √130/(12h) ≈ 63: ~1e-4 absolute, against gradients of order 0.1–10.
//
// Measured: ≤ 2e-5 for single layers, ≤ 3e-4 through blocks and the model (the time-MLP
// gradients are the smallest there, so the noise weighs most). fdTol 1e-3 leaves room for
// other summation orders and is far below what a real mistake produces (a missing term or
// a transposed index is an O(1) relative error). ReLU inputs stay ≥ 0.1 from 0, so no
// stencil crosses the kink.
const (
	fdStep = 1.5e-2
	fdTol  = 1e-3
)

// fdVar is one differentiable input: its value (perturbed in place) and where the
// analytic backward leaves its gradient.
type fdVar struct {
	name      string
	val, grad *compute.Tensor
}

type fdProblem struct {
	vars     []fdVar
	forward  func() *compute.Tensor
	backward func(dy *compute.Tensor)
	// maxEntries bounds the entries checked per variable (0: all); a random subset is
	// checked beyond it, which keeps the block and model checks fast.
	maxEntries int
}

func runFD(t *testing.T, dev compute.Device, p fdProblem, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	y := p.forward()
	r := make([]float32, y.Len())
	for i := range r {
		r[i] = float32(rng.NormFloat64())
	}
	loss := func() float64 {
		out := compute.ToHost(p.forward())
		var s float64
		for i, v := range out {
			s += float64(r[i]) * float64(v)
		}
		return s
	}
	dy := compute.FromHost(dev, r, y.Shape()...)
	p.backward(dy)
	analytic := make([][]float32, len(p.vars))
	for i, v := range p.vars {
		analytic[i] = compute.ToHost(v.grad)
	}
	for i, v := range p.vars {
		host := compute.ToHost(v.val)
		idx := rng.Perm(len(host))
		if p.maxEntries > 0 && len(idx) > p.maxEntries {
			idx = idx[:p.maxEntries]
		}
		var num, ana []float32
		for _, k := range idx {
			orig := host[k]
			at := func(d float64) float64 {
				host[k] = float32(float64(orig) + d)
				dev.Upload(v.val, host)
				return loss()
			}
			g := (-at(2*fdStep) + 8*at(fdStep) - 8*at(-fdStep) + at(-2*fdStep)) / (12 * fdStep)
			host[k] = orig
			dev.Upload(v.val, host)
			num = append(num, float32(g))
			ana = append(ana, analytic[i][k])
		}
		// Scale by the tensor's largest analytic entry, not the sampled ones': the noise is
		// absolute, and a sample of small entries must not turn it into a large ratio.
		var scale, diff float64
		for _, g := range analytic[i] {
			scale = math.Max(scale, math.Abs(float64(g)))
		}
		for j := range num {
			diff = math.Max(diff, math.Abs(float64(num[j])-float64(ana[j])))
		}
		e := diff / scale
		if e > fdTol {
			worst := 0
			for j := range num {
				if math.Abs(float64(num[j]-ana[j])) > math.Abs(float64(num[worst]-ana[worst])) {
					worst = j
				}
			}
			t.Errorf("%s: relative error %.3g > %.3g (worst entry %d: analytic %v, numeric %v)",
				v.name, e, fdTol, idx[worst], ana[worst], num[worst])
		} else {
			t.Logf("%s: relative error %.3g over %d entries", v.name, e, len(idx))
		}
	}
}

func randTensor(dev compute.Device, rng *rand.Rand, lo, hi float64, shape ...int) *compute.Tensor {
	x := make([]float32, compute.Numel(shape))
	for i := range x {
		x[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return compute.FromHost(dev, x, shape...)
}

// awayFromZero draws values in ±[0.1, 1]: the ReLU kink is ≥ 10h from every input.
func awayFromZero(dev compute.Device, rng *rand.Rand, shape ...int) *compute.Tensor {
	x := make([]float32, compute.Numel(shape))
	for i := range x {
		v := 0.1 + 0.9*rng.Float64()
		if rng.IntN(2) == 0 {
			v = -v
		}
		x[i] = float32(v)
	}
	return compute.FromHost(dev, x, shape...)
}

// randomiseNorms gives every GroupNorm non-trivial affine parameters (γ = 1, β = 0 would
// hide a backward that ignores them).
func randomiseNorms(dev compute.Device, ps *ParamSet, rng *rand.Rand) {
	for _, p := range ps.List {
		if !strings.Contains(p.Name, "norm") && !strings.Contains(p.Name, "skip.1") {
			continue
		}
		v := make([]float32, p.Value.Len())
		for i := range v {
			if strings.HasSuffix(p.Name, ".weight") {
				v[i] = float32(1 + 0.3*(2*rng.Float64()-1))
			} else {
				v[i] = float32(0.2 * (2*rng.Float64() - 1))
			}
		}
		dev.Upload(p.Value, v)
	}
}

func paramVars(ps *ParamSet) []fdVar {
	var vs []fdVar
	for _, p := range ps.List {
		vs = append(vs, fdVar{p.Name, p.Value, p.Grad})
	}
	return vs
}

func TestFiniteDifferenceLayers(t *testing.T) {
	dev := fallback.New()
	rng := rand.New(rand.NewPCG(5, 6))
	convCases := []struct {
		name      string
		in, out   int
		k         int
		conv      compute.Conv
		x         []int
		transpose bool
	}{
		{"Conv3d k3 s1 p1", 3, 4, 3, compute.Conv3x3, []int{2, 3, 3, 4, 5}, false},
		{"Conv3d k4 s2 p1", 2, 3, 4, compute.ConvS2P1, []int{2, 2, 6, 4, 7}, false},
		{"Conv3d k1 s1 p0", 4, 3, 1, compute.Conv{Stride: [3]int{1, 1, 1}}, []int{1, 4, 2, 3, 3}, false},
		{"ConvTranspose3d k4 s2 p1", 3, 2, 4, compute.ConvS2P1, []int{2, 3, 2, 3, 2}, true},
		{"ConvTranspose3d k3 s1 p1", 2, 3, 3, compute.Conv3x3, []int{1, 2, 3, 2, 4}, true},
	}
	for _, c := range convCases {
		t.Run(c.name, func(t *testing.T) {
			var b builder
			var fwd func(x, y *compute.Tensor)
			var bwd func(x, dy, dx *compute.Tensor)
			var outShape func([]int) []int
			if c.transpose {
				l := newConvTranspose3d(&b, "l", c.in, c.out, c.k, c.conv)
				fwd = func(x, y *compute.Tensor) { l.Forward(dev, x, y) }
				bwd = func(x, dy, dx *compute.Tensor) { l.Backward(dev, x, dy, dx) }
				outShape = l.OutShape
			} else {
				l := newConv3d(&b, "l", c.in, c.out, c.k, c.conv)
				fwd = func(x, y *compute.Tensor) { l.Forward(dev, x, y) }
				bwd = func(x, dy, dx *compute.Tensor) { l.Backward(dev, x, dy, dx) }
				outShape = l.OutShape
			}
			ps := b.build(dev, 3)
			x := randTensor(dev, rng, -1, 1, c.x...)
			dx := dev.Alloc(c.x...)
			y := dev.Alloc(outShape(c.x)...)
			runFD(t, dev, fdProblem{
				vars:     append(paramVars(ps), fdVar{"input", x, dx}),
				forward:  func() *compute.Tensor { fwd(x, y); return y },
				backward: func(dy *compute.Tensor) { bwd(x, dy, dx) },
			}, 11)
		})
	}

	t.Run("GroupNorm", func(t *testing.T) {
		var b builder
		var p pool
		l := newGroupNorm(&b, &p, "norm", 16)
		ps := b.build(dev, 3)
		randomiseNorms(dev, ps, rng)
		shape := []int{2, 16, 2, 3, 2}
		x := randTensor(dev, rng, -2, 2, shape...)
		dx, y := dev.Alloc(shape...), dev.Alloc(shape...)
		runFD(t, dev, fdProblem{
			vars:     append(paramVars(ps), fdVar{"input", x, dx}),
			forward:  func() *compute.Tensor { l.Forward(dev, x, y); return y },
			backward: func(dy *compute.Tensor) { l.Backward(dev, x, dy, dx) },
		}, 12)
	})

	t.Run("Linear", func(t *testing.T) {
		var b builder
		l := newLinear(&b, "fc", 5, 4)
		ps := b.build(dev, 3)
		x := randTensor(dev, rng, -1, 1, 3, 5)
		dx, y := dev.Alloc(3, 5), dev.Alloc(3, 4)
		runFD(t, dev, fdProblem{
			vars:     append(paramVars(ps), fdVar{"input", x, dx}),
			forward:  func() *compute.Tensor { l.Forward(dev, x, y); return y },
			backward: func(dy *compute.Tensor) { l.Backward(dev, x, dy, dx) },
		}, 13)
	})

	for _, act := range []compute.Act{compute.SiLU, compute.Tanh, compute.ReLU} {
		t.Run(act.String(), func(t *testing.T) {
			shape := []int{2, 3, 4}
			x := awayFromZero(dev, rng, shape...)
			dx, y := dev.Alloc(shape...), dev.Alloc(shape...)
			runFD(t, dev, fdProblem{
				vars:     []fdVar{{"input", x, dx}},
				forward:  func() *compute.Tensor { dev.ActForward(act, x, y); return y },
				backward: func(dy *compute.Tensor) { dev.ActBackward(act, x, y, dy, dx) },
			}, 14)
		})
	}
}

// TestFiniteDifferenceBlocks checks the residual block (the time-MLP add path, with the
// identity and the 1×1 skip) and whole models, on a random subset of every tensor's entries.
func TestFiniteDifferenceBlocks(t *testing.T) {
	dev := fallback.New()
	rng := rand.New(rand.NewPCG(7, 8))
	// 16 channels: two per GroupNorm group. With one, a bias just before a norm has a zero
	// gradient, and the check would compare rounding noise with rounding noise.
	for _, c := range []struct{ in, out int }{{16, 16}, {4, 16}} {
		t.Run(fmt.Sprintf("residual block %d→%d", c.in, c.out), func(t *testing.T) {
			var b builder
			var p pool
			const timeDim = 6
			blk := newResBlock(&b, &p, "blk", c.in, c.out, timeDim)
			ps := b.build(dev, 4)
			randomiseNorms(dev, ps, rng)
			x := randTensor(dev, rng, -1, 1, 2, c.in, 2, 3, 2)
			emb := compute.FromHost(dev, TimeEmbedding([]float32{0.3, 0.85}, timeDim), 2, timeDim)
			outShape := []int{2, c.out, 2, 3, 2}
			dx, s := dev.Alloc(x.Shape()...), dev.Alloc(outShape...)
			y, dout := dev.Alloc(outShape...), dev.Alloc(outShape...)
			runFD(t, dev, fdProblem{
				vars:    append(paramVars(ps), fdVar{"input", x, dx}),
				forward: func() *compute.Tensor { blk.forward(dev, x, emb, s, y); return y },
				backward: func(dy *compute.Tensor) {
					dev.Copy(dout, dy) // backward overwrites its dout
					dev.Copy(dx, blk.backward(dev, x, emb, dout, s))
				},
				maxEntries: 12,
			}, 21)
		})
	}

	t.Run("velocity model", func(t *testing.T) {
		m, err := NewVelocity(dev, VelocityConfig{InChannels: 3, BaseChannels: 16, TimeDim: 8, NumResBlocks: 2}, 9)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		randomiseNorms(dev, m.Params(), rng)
		z := randTensor(dev, rng, -1.5, 1.5, 2, 3, 2, 3, 4)
		ts := []float32{0.1, 0.7}
		runFD(t, dev, fdProblem{
			vars:       paramVars(m.Params()),
			forward:    func() *compute.Tensor { return m.Forward(z, ts) },
			backward:   m.Backward,
			maxEntries: 6,
		}, 22)
	})
}
