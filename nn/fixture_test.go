package nn

import (
	"path/filepath"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/nn/internal/fixture"
)

// Tolerances: see nn/internal/fixture, which states their reasons.
const (
	fwdTol  = fixture.ForwardTol
	gradTol = fixture.GradTol
	lossTol = fixture.LossTol
)

// testFixture wraps a golden file with test-failing accessors.
type testFixture struct{ *fixture.File }

func loadFixture(t *testing.T, name string) testFixture {
	t.Helper()
	f, err := fixture.Read(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 nn/testdata/gen_golden.py)", err)
	}
	return testFixture{f}
}

func (f testFixture) get(t *testing.T, name string) compute.Array {
	t.Helper()
	a, err := f.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f testFixture) metaJSON(t *testing.T, key string, v any) {
	t.Helper()
	if err := f.MetaJSON(key, v); err != nil {
		t.Fatal(err)
	}
}

func upload(dev compute.Device, a compute.Array) *compute.Tensor {
	return compute.FromHost(dev, a.Data, a.Shape...)
}

func relErr(got, want []float32) float64 { return fixture.RelErr(got, want) }
