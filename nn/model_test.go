package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
)

func TestVelocityParamCounts(t *testing.T) {
	// The seed's numbers (SPEC §2 and issue 2).
	cases := []struct {
		name string
		cfg  VelocityConfig
		want int
	}{
		{"defaults", DefaultVelocityConfig(), 1_378_752},
		{"base 128", VelocityConfig{128, 128, 128, 4}, 4_559_616},
		{"base 32, 2 blocks", VelocityConfig{128, 32, 128, 2}, 342_816},
	}
	dev := fallback.New()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.cfg.ParamCount(); got != c.want {
				t.Errorf("ParamCount() = %d, want %d", got, c.want)
			}
			m, err := NewVelocity(dev, c.cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release()
			ps := m.Params()
			if got := ps.Count(); got != c.want {
				t.Errorf("Params().Count() = %d, want %d", got, c.want)
			}
			sum, seen := 0, map[string]bool{}
			for _, p := range ps.List {
				if seen[p.Name] {
					t.Errorf("duplicate parameter %s", p.Name)
				}
				seen[p.Name] = true
				sum += p.Value.Len()
			}
			if sum != c.want {
				t.Errorf("parameters add up to %d, want %d", sum, c.want)
			}
			if got, want := len(ps.List), 4+12*c.cfg.NumResBlocks+4; got != want {
				t.Errorf("%d parameter tensors, want %d", got, want)
			}
		})
	}
}

func TestVelocityConfigValidate(t *testing.T) {
	cases := []struct {
		cfg     VelocityConfig
		wantErr []string // substrings; nil: valid
	}{
		{DefaultVelocityConfig(), nil},
		{VelocityConfig{1, 8, 4, 0}, nil},
		{VelocityConfig{128, 12, 128, 4}, []string{"base_channels", "12"}},
		{VelocityConfig{128, 0, 128, 4}, []string{"base_channels"}},
		{VelocityConfig{128, 64, 7, 4}, []string{"time_dim", "7"}},
		{VelocityConfig{128, 64, 2, 4}, []string{"time_dim"}},
		{VelocityConfig{0, 64, 128, 4}, []string{"in_channels"}},
		{VelocityConfig{128, 64, 128, -1}, []string{"num_res_blocks"}},
		{VelocityConfig{0, 4, 3, -2}, []string{"in_channels", "base_channels", "time_dim", "num_res_blocks"}},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if c.wantErr == nil {
			if err != nil {
				t.Errorf("%+v: unexpected error %v", c.cfg, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v: no error", c.cfg)
			continue
		}
		for _, s := range c.wantErr {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%+v: error %q does not mention %q", c.cfg, err, s)
			}
		}
		if _, err := NewVelocity(fallback.New(), c.cfg, 1); err == nil {
			t.Errorf("%+v: NewVelocity accepted it", c.cfg)
		}
	}
}

func TestCheckInput(t *testing.T) {
	cfg := VelocityConfig{8, 16, 16, 1}
	for _, c := range []struct {
		shape []int
		ok    bool
	}{
		{[]int{2, 8, 4, 6, 8}, true},
		{[]int{1, 8, 1, 1, 1}, true},
		{[]int{2, 7, 4, 6, 8}, false},
		{[]int{2, 8, 4, 6}, false},
		{[]int{0, 8, 4, 6, 8}, false},
		{[]int{2, 8, 0, 6, 8}, false},
	} {
		if err := cfg.CheckInput(c.shape); (err == nil) != c.ok {
			t.Errorf("velocity CheckInput(%v) = %v", c.shape, err)
		}
	}
	ae, err := NewTiny3DAE(fallback.New(), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		shape []int
		ok    bool
	}{
		{[]int{1, 1, 64, 128, 128}, true},
		{[]int{2, 1, 8, 16, 24}, true},
		{[]int{1, 2, 64, 128, 128}, false},
		{[]int{1, 1, 60, 128, 128}, false},
		{[]int{1, 1, 0, 128, 128}, false},
		{[]int{1, 64, 128, 128}, false},
	} {
		if err := ae.CheckInput(c.shape); (err == nil) != c.ok {
			t.Errorf("AE CheckInput(%v) = %v", c.shape, err)
		}
	}
	if got := ae.LatentShape([]int{1, 1, 64, 128, 128}); !slices.Equal(got, []int{1, 16, 8, 16, 16}) {
		t.Errorf("LatentShape = %v", got)
	}
	if _, err := NewTiny3DAE(fallback.New(), 0, 1); err == nil {
		t.Error("NewTiny3DAE accepted base 0")
	}
}

// TestInitialisation checks PyTorch's default distributions: weights and biases
// U(±1/√fan_in) with fan_in = weight dim 1 × kernel volume, GroupNorm γ = 1 and β = 0, and
// that the seed alone decides the values.
func TestInitialisation(t *testing.T) {
	dev := fallback.New()
	m, err := NewVelocity(dev, VelocityConfig{8, 16, 16, 1}, 42)
	if err != nil {
		t.Fatal(err)
	}
	ae, err := NewTiny3DAE(dev, 4, 42)
	if err != nil {
		t.Fatal(err)
	}
	fanIn := map[string]int{
		"input_conv": 8 * 27, "res_blocks.0.time_mlp.mlp.0": 16, "res_blocks.0.time_mlp.mlp.2": 16,
		"res_blocks.0.conv1": 16 * 27, "res_blocks.0.conv2": 16 * 27, "output_conv": 16 * 27,
		"enc.0": 27, "enc.2": 4 * 64, "enc.4": 8 * 64, "enc.6": 16 * 64,
		// ConvTranspose3d: weight (in, out, k…), PyTorch's fan_in is dim 1 (out) × k³.
		"dec.0": 16 * 64, "dec.2": 8 * 64, "dec.4": 4 * 64, "dec.6": 4 * 27,
	}
	for _, sd := range []map[string]compute.Array{m.Params().StateDict(), ae.Params().StateDict()} {
		for name, a := range sd {
			module := name[:strings.LastIndex(name, ".")]
			if strings.Contains(module, "norm") {
				want := float32(1)
				if strings.HasSuffix(name, ".bias") {
					want = 0
				}
				for _, v := range a.Data {
					if v != want {
						t.Fatalf("%s: %v, want all %v", name, v, want)
					}
				}
				continue
			}
			fi, ok := fanIn[module]
			if !ok {
				t.Fatalf("no fan_in for %s", name)
			}
			bound := 1 / math.Sqrt(float64(fi))
			var sum, sq, peak float64
			for _, v := range a.Data {
				x := float64(v)
				if math.Abs(x) > bound {
					t.Fatalf("%s: %v outside ±%v", name, x, bound)
				}
				sum += x
				sq += x * x
				peak = math.Max(peak, math.Abs(x))
			}
			n := float64(len(a.Data))
			if n < 1000 {
				continue
			}
			// Moments of U(±b): mean 0 (sd b/√(3n)), variance b²/3 (relative sd ≈ √(0.8/n) ≤ 3%).
			mean, variance := sum/n, sq/n
			if math.Abs(mean) > 5*bound/math.Sqrt(3*n) {
				t.Errorf("%s: mean %v is not ≈ 0", name, mean)
			}
			if r := variance / (bound * bound / 3); r < 0.85 || r > 1.15 {
				t.Errorf("%s: variance is %.3f of b²/3", name, r)
			}
			if peak < 0.95*bound {
				t.Errorf("%s: largest |w| %v, want close to the bound %v", name, peak, bound)
			}
		}
	}
	same, err := NewVelocity(dev, VelocityConfig{8, 16, 16, 1}, 42)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewVelocity(dev, VelocityConfig{8, 16, 16, 1}, 43)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := compute.ToHost(m.Params().Value), compute.ToHost(same.Params().Value), compute.ToHost(other.Params().Value)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different parameters")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same parameters")
	}
}

func TestStateDict(t *testing.T) {
	dev := fallback.New()
	cfg := VelocityConfig{4, 16, 8, 1}
	src, _ := NewVelocity(dev, cfg, 1)
	dst, _ := NewVelocity(dev, cfg, 2)
	sd := src.Params().StateDict()
	if len(sd) != len(src.Params().List) {
		t.Fatalf("%d keys, want %d", len(sd), len(src.Params().List))
	}
	if err := dst.Params().LoadStateDict(sd); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(compute.ToHost(src.Params().Value), compute.ToHost(dst.Params().Value)) {
		t.Fatal("values differ after LoadStateDict")
	}
	// The state dict is a copy: changing it leaves the model alone.
	sd["input_conv.bias"].Data[0] = 1e6
	if v := compute.ToHost(src.Params().Value); slices.Contains(v, 1e6) {
		t.Error("StateDict returned a view of the model's values")
	}

	before := compute.ToHost(dst.Params().Value)
	bad := dst.Params().StateDict()
	delete(bad, "output_conv.bias")
	delete(bad, "res_blocks.0.norm1.weight")
	bad["res_blocks.0.skip.0.weight"] = compute.NewArray(16, 16, 1, 1, 1)
	bad["extra"] = compute.NewArray(3)
	bad["input_conv.weight"] = compute.NewArray(16, 4, 3, 3, 1)
	bad["input_norm.bias"] = compute.Array{Shape: []int{16}, Data: make([]float32, 15)}
	err := dst.Params().LoadStateDict(bad)
	if err == nil {
		t.Fatal("a mismatched state dict loaded")
	}
	for _, s := range []string{
		"2 missing", "output_conv.bias", "res_blocks.0.norm1.weight",
		"2 unexpected", "res_blocks.0.skip.0.weight", "extra",
		"2 mis-shaped", "input_conv.weight: has [16 4 3 3 1], model wants [16 4 3 3 3]", "input_norm.bias",
	} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if !slices.Equal(before, compute.ToHost(dst.Params().Value)) {
		t.Error("a failed LoadStateDict changed the model")
	}
}

func randArray(rng *rand.Rand, shape ...int) compute.Array {
	a := compute.NewArray(shape...)
	for i := range a.Data {
		a.Data[i] = float32(rng.NormFloat64())
	}
	return a
}

// TestVelocityBatchIndependence runs a batch, then each sample alone (so the buffers are
// re-made for a new shape), then the batch again: every sample's output must not depend
// on its neighbours, and odd spatial sizes must work.
func TestVelocityBatchIndependence(t *testing.T) {
	dev := fallback.New()
	rng := rand.New(rand.NewPCG(3, 4))
	m, err := NewVelocity(dev, VelocityConfig{3, 16, 8, 2}, 5)
	if err != nil {
		t.Fatal(err)
	}
	randomiseNorms(dev, m.Params(), rng)
	for _, shape := range [][]int{{3, 3, 1, 3, 5}, {3, 3, 2, 2, 3}} {
		z := randArray(rng, shape...)
		ts := []float32{0, 0.37, 1}
		batch := compute.ToHost(m.Forward(upload(dev, z), ts))
		per := len(batch) / 3
		for i := range 3 {
			one := slices.Clone(shape)
			one[0] = 1
			zi := compute.FromHost(dev, z.Data[i*per:(i+1)*per], one...)
			got := compute.ToHost(m.Forward(zi, ts[i:i+1]))
			// Same arithmetic per sample; 1e-6 allows for a backend that splits work by batch.
			if e := relErr(got, batch[i*per:(i+1)*per]); e > 1e-6 {
				t.Errorf("shape %v, sample %d alone differs from the batch: %.3g", shape, i, e)
			}
		}
		again := compute.ToHost(m.Forward(upload(dev, z), ts))
		if e := relErr(again, batch); e > 0 {
			t.Errorf("shape %v: the batch again differs: %.3g", shape, e)
		}
	}
}

func TestMSE(t *testing.T) {
	dev := fallback.New()
	rng := rand.New(rand.NewPCG(1, 2))
	p, q := randArray(rng, 2, 3, 5, 7), randArray(rng, 2, 3, 5, 7)
	pt, qt := upload(dev, p), upload(dev, q)
	var want float64
	for i := range p.Data {
		d := float64(p.Data[i]) - float64(q.Data[i])
		want += d * d
	}
	want /= float64(len(p.Data))
	grad := dev.Alloc(p.Shape...)
	got := MSE(dev, pt, qt, grad)
	// The host sums float32 differences (each within half an ulp) in float64.
	if relDiff(got, want) > 1e-7 {
		t.Errorf("MSE = %v, want %v", got, want)
	}
	if got2 := MSE(dev, pt, qt, nil); got2 != got {
		t.Errorf("MSE without gradient = %v, with = %v", got2, got)
	}
	scale := float32(2 / float64(len(p.Data)))
	g := compute.ToHost(grad)
	g2 := dev.Alloc(p.Shape...)
	MSEGrad(dev, pt, qt, g2)
	for i, v := range g {
		if w := (p.Data[i] - q.Data[i]) * scale; v != w {
			t.Fatalf("gradient[%d] = %v, want %v", i, v, w)
		}
	}
	if !slices.Equal(g, compute.ToHost(g2)) {
		t.Error("MSEGrad differs from MSE's gradient")
	}
}

// TestAdamState checks that State/LoadState resume training exactly, and that bad states
// are refused without side effects.
func TestAdamState(t *testing.T) {
	dev := fallback.New()
	rng := rand.New(rand.NewPCG(9, 9))
	cfg := VelocityConfig{2, 16, 4, 1}
	z := randArray(rng, 2, 2, 2, 3, 2)
	target := randArray(rng, 2, 2, 2, 3, 2)
	ts := []float32{0.2, 0.9}
	step := func(m *Velocity, a *Adam) {
		v := m.Forward(upload(dev, z), ts)
		dv := dev.Alloc(v.Shape()...)
		MSEGrad(dev, v, upload(dev, target), dv)
		m.Backward(dv)
		a.Step()
	}
	m1, _ := NewVelocity(dev, cfg, 1)
	a1 := NewAdam(dev, m1.Params(), 1e-3)
	step(m1, a1)
	sd := m1.Params().StateDict()
	n, ea, eas := a1.State()
	step(m1, a1)

	m2, _ := NewVelocity(dev, cfg, 2)
	a2 := NewAdam(dev, m2.Params(), 1e-3)
	if err := m2.Params().LoadStateDict(sd); err != nil {
		t.Fatal(err)
	}
	if err := a2.LoadState(n, ea, eas); err != nil {
		t.Fatal(err)
	}
	step(m2, a2)
	if a2.Steps() != 2 {
		t.Errorf("Steps = %d, want 2", a2.Steps())
	}
	if !slices.Equal(compute.ToHost(m1.Params().Value), compute.ToHost(m2.Params().Value)) {
		t.Error("resumed training differs from uninterrupted training")
	}

	delete(ea, "input_conv.bias")
	if err := a2.LoadState(1, ea, eas); err == nil || !strings.Contains(err.Error(), "input_conv.bias") {
		t.Errorf("missing exp_avg key: error %v", err)
	}
	if err := a2.LoadState(-1, eas, eas); err == nil {
		t.Error("negative step accepted")
	}
	neg := a2.ps.split(a2.v)
	neg["output_conv.weight"].Data[3] = -1
	if err := a2.LoadState(1, neg, neg); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative second moment: error %v", err)
	}
	if a2.Steps() != 2 {
		t.Error("a failed LoadState changed the step count")
	}
}

// TestVelocityBackwardOncePerForward: Backward recomputes from the kept activations and
// overwrites them, so it needs a Forward before each call; a repeated Forward and
// Backward give the same gradients bit for bit. StateView reads the same values as
// StateDict.
func TestVelocityBackwardOncePerForward(t *testing.T) {
	dev := fallback.New()
	m, err := NewVelocity(dev, VelocityConfig{InChannels: 3, BaseChannels: 16, TimeDim: 8, NumResBlocks: 2}, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	rng := rand.New(rand.NewPCG(1, 2))
	z := upload(dev, randArray(rng, 2, 3, 2, 3, 2))
	dv := upload(dev, randArray(rng, 2, 3, 2, 3, 2))
	ts := []float32{0.3, 0.6}
	refused := func(what string) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: Backward did not panic", what)
			}
		}()
		m.Backward(dv)
	}
	refused("before any Forward")
	m.Forward(z, ts)
	m.Backward(dv)
	g1 := compute.ToHost(m.Params().Grad)
	refused("a second Backward")
	m.Forward(z, ts)
	m.Backward(dv)
	if !slices.Equal(g1, compute.ToHost(m.Params().Grad)) {
		t.Error("a repeated Forward and Backward gave other gradients")
	}

	sd, view := m.Params().StateDict(), m.Params().StateView()
	for k, a := range sd {
		if !slices.Equal(a.Shape, view[k].Shape) || !slices.Equal(a.Data, view[k].Data) {
			t.Errorf("StateView of %s differs from StateDict", k)
		}
	}
	if len(view) != len(sd) {
		t.Errorf("StateView has %d keys, StateDict %d", len(view), len(sd))
	}
}
