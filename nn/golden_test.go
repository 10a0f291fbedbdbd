package nn

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
)

func metaFloat(t *testing.T, f testFixture, key string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(f.Meta[key], 64)
	if err != nil {
		t.Fatalf("%s: metadata %s: %v", f.Name, key, err)
	}
	return v
}

// checkKeys verifies the parameter names and order are PyTorch's state_dict order.
func checkKeys(t *testing.T, f testFixture, ps *ParamSet, prefix string) {
	t.Helper()
	var want []string
	f.metaJSON(t, "keys", &want)
	var got []string
	for _, p := range ps.List {
		got = append(got, strings.TrimPrefix(p.Name, prefix))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parameter keys\n got %v\nwant %v", got, want)
	}
}

func withPrefix(prefix string, m map[string]compute.Array) map[string]compute.Array {
	out := map[string]compute.Array{}
	for k, v := range m {
		out[prefix+k] = v
	}
	return out
}

func checkTensor(t *testing.T, what string, got *compute.Tensor, want compute.Array, tol float64) {
	t.Helper()
	if !slices.Equal(got.Shape(), want.Shape) {
		t.Errorf("%s: shape %v, want %v", what, got.Shape(), want.Shape)
		return
	}
	e := relErr(compute.ToHost(got), want.Data)
	if e > tol {
		t.Errorf("%s: relative error %.3g > %.3g", what, e, tol)
	}
	t.Logf("%s: relative error %.3g", what, e)
}

func checkGrads(t *testing.T, f testFixture, ps *ParamSet, prefix string, tol float64) {
	t.Helper()
	var torch32 map[string]float64
	f.metaJSON(t, "torch_f32_grad_rel", &torch32)
	worst, worstName := 0.0, ""
	for _, p := range ps.List {
		key := strings.TrimPrefix(p.Name, prefix)
		want := f.get(t, "grad/"+key)
		e := relErr(compute.ToHost(p.Grad), want.Data)
		if e > tol {
			t.Errorf("gradient of %s: relative error %.3g > %.3g (PyTorch float32: %.3g)", p.Name, e, tol, torch32[key])
		}
		if e > worst {
			worst, worstName = e, p.Name
		}
	}
	t.Logf("worst gradient: %s, relative error %.3g", worstName, worst)
}

func relDiff(a, b float64) float64 {
	d := a - b
	if d < 0 {
		d = -d
	}
	if b < 0 {
		b = -b
	}
	return d / b
}

func TestTimeEmbeddingGolden(t *testing.T) {
	f := loadFixture(t, "velocity.st")
	ts := f.get(t, "emb/t").Data
	want := f.get(t, "emb/128")
	got := TimeEmbedding(ts, 128)
	if len(got) != len(want.Data) {
		t.Fatalf("%d values, want %d", len(got), len(want.Data))
	}
	// The embedding is computed in float64 and rounded once, so it matches the float64
	// reference to float32 rounding (values are in [-1, 1]: half an ulp of 1 is 6e-8).
	for i := range got {
		if d := float64(got[i]) - float64(want.Data[i]); d > 1.2e-7 || d < -1.2e-7 {
			t.Fatalf("element %d (t=%v, column %d): %v, want %v", i, ts[i/128], i%128, got[i], want.Data[i])
		}
	}
}

func TestSkipBlockGolden(t *testing.T) {
	f := loadFixture(t, "skipblock.st")
	var cfg struct {
		In      int `json:"in_channels"`
		Out     int `json:"out_channels"`
		TimeDim int `json:"time_dim"`
	}
	f.metaJSON(t, "config", &cfg)
	dev := fallback.New()
	var b builder
	var p pool
	blk := newResBlock(&b, &p, "blk", cfg.In, cfg.Out, cfg.TimeDim)
	ps := b.build(dev, 1)
	defer p.release(dev)
	checkKeys(t, f, ps, "blk.")
	if err := ps.LoadStateDict(withPrefix("blk.", f.Prefixed("param"))); err != nil {
		t.Fatal(err)
	}
	x := upload(dev, f.get(t, "in/x"))
	emb := compute.FromHost(dev, TimeEmbedding(f.get(t, "in/t").Data, cfg.TimeDim), x.Dim(0), cfg.TimeDim)
	outShape := blk.outShape(x)
	y := dev.Alloc(outShape...)
	blk.forward(dev, x, emb, dev.Alloc(outShape...), y)
	checkTensor(t, "block forward", y, f.get(t, "out/y"), fwdTol)

	dy := dev.Alloc(y.Shape()...)
	loss := MSE(dev, y, upload(dev, f.get(t, "in/target")), dy)
	if want := metaFloat(t, f, "loss"); relDiff(loss, want) > lossTol {
		t.Errorf("loss %.9g, want %.9g", loss, want)
	}
	dx := blk.backward(dev, x, emb, dy, dev.Alloc(y.Shape()...))
	if !slices.Equal(dx.Shape(), x.Shape()) {
		t.Errorf("input gradient of shape %v for an input of shape %v", dx.Shape(), x.Shape())
	}
	checkGrads(t, f, ps, "blk.", gradTol)
}
