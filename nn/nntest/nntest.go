// Package nntest runs package nn's golden checks — the seed's two models and Adam against
// fixtures computed by PyTorch (nn/testdata/gen_golden.py) — on any compute.Device, so
// every backend proves model-level parity with one call from its tests:
//
//	func TestModelsGolden(t *testing.T) { nntest.Golden(t, dev) }
//
// Tolerances and their reasons are in nn/internal/fixture.
package nntest

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/nn"
	"github.com/latentad/latentad/nn/internal/fixture"
)

// Golden runs the velocity model, Tiny3DAE and Adam checks on dev as subtests.
func Golden(t *testing.T, dev compute.Device) {
	t.Run("velocity", func(t *testing.T) { velocity(t, dev) })
	t.Run("tiny3dae", func(t *testing.T) { tiny3DAE(t, dev) })
	t.Run("adam", func(t *testing.T) { adam(t, dev) })
}

type file struct {
	*fixture.File
	t *testing.T
}

func load(t *testing.T, name string) file {
	t.Helper()
	f, err := fixture.Read(filepath.Join(fixture.Dir(), name))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 nn/testdata/gen_golden.py)", err)
	}
	return file{f, t}
}

func (f file) get(name string) compute.Array {
	f.t.Helper()
	a, err := f.Get(name)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f file) meta(key string, v any) {
	f.t.Helper()
	if err := f.MetaJSON(key, v); err != nil {
		f.t.Fatal(err)
	}
}

func (f file) metaFloat(key string) float64 {
	f.t.Helper()
	v, err := strconv.ParseFloat(f.Meta[key], 64)
	if err != nil {
		f.t.Fatalf("%s: metadata %s: %v", f.Name, key, err)
	}
	return v
}

// load puts the fixture's weights into ps after checking the key order is PyTorch's.
func (f file) loadParams(ps *nn.ParamSet) {
	f.t.Helper()
	var want, got []string
	f.meta("keys", &want)
	for _, p := range ps.List {
		got = append(got, p.Name)
	}
	if !slices.Equal(got, want) {
		f.t.Fatalf("parameter keys\n got %v\nwant %v", got, want)
	}
	if err := ps.LoadStateDict(f.Prefixed("param")); err != nil {
		f.t.Fatal(err)
	}
}

// upload puts a fixture tensor on dev; it is released when the test ends.
func (f file) upload(dev compute.Device, name string) *compute.Tensor {
	a := f.get(name)
	x := compute.FromHost(dev, a.Data, a.Shape...)
	f.t.Cleanup(func() { dev.Release(x) })
	return x
}

func (f file) check(what string, got *compute.Tensor, name string, tol float64) {
	f.t.Helper()
	want := f.get(name)
	if !slices.Equal(got.Shape(), want.Shape) {
		f.t.Errorf("%s: shape %v, want %v", what, got.Shape(), want.Shape)
		return
	}
	e := fixture.RelErr(compute.ToHost(got), want.Data)
	if e > tol {
		f.t.Errorf("%s: relative error %.3g > %.3g", what, e, tol)
	}
	f.t.Logf("%s: relative error %.3g", what, e)
}

func (f file) checkLoss(loss float64) {
	f.t.Helper()
	want := f.metaFloat("loss")
	if d := (loss - want) / want; d > fixture.LossTol || d < -fixture.LossTol {
		f.t.Errorf("loss %.9g, want %.9g", loss, want)
	}
}

func (f file) checkGrads(ps *nn.ParamSet) {
	f.t.Helper()
	var torch32 map[string]float64
	f.meta("torch_f32_grad_rel", &torch32)
	worst, worstName := 0.0, ""
	for _, p := range ps.List {
		e := fixture.RelErr(compute.ToHost(p.Grad), f.get("grad/"+p.Name).Data)
		if e > fixture.GradTol {
			f.t.Errorf("gradient of %s: relative error %.3g > %.3g (PyTorch float32: %.3g)", p.Name, e, fixture.GradTol, torch32[p.Name])
		}
		if e > worst {
			worst, worstName = e, p.Name
		}
	}
	f.t.Logf("worst gradient: %s, relative error %.3g", worstName, worst)
}

func velocity(t *testing.T, dev compute.Device) {
	f := load(t, "velocity.st")
	var cfg nn.VelocityConfig
	f.meta("config", &cfg)
	m, err := nn.NewVelocity(dev, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	f.loadParams(m.Params())
	z, target := f.upload(dev, "in/z"), f.upload(dev, "in/target")
	ts := f.get("in/t").Data
	v := m.Forward(z, ts)
	f.check("forward", v, "out/v", fixture.ForwardTol)

	dv := dev.Alloc(v.Shape()...)
	defer dev.Release(dv)
	f.checkLoss(nn.MSE(dev, v, target, dv))
	m.Backward(dv)
	f.checkGrads(m.Params())

	// Same shape again: the buffers are reused and the result is the same.
	if v2 := m.Forward(z, ts); v2 != v {
		t.Error("a second Forward with the same shape returned a new buffer")
	}
	f.check("forward (second call)", v, "out/v", fixture.ForwardTol)
}

func tiny3DAE(t *testing.T, dev compute.Device) {
	f := load(t, "ae.st")
	base, err := strconv.Atoi(f.Meta["base"])
	if err != nil {
		t.Fatalf("%s: metadata base: %v", f.Name, err)
	}
	m, err := nn.NewTiny3DAE(dev, base, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	f.loadParams(m.Params())
	x := f.upload(dev, "in/x")
	f.check("encoder", m.Encode(x), "out/latent", fixture.ForwardTol)
	recon := m.Forward(x)
	f.check("reconstruction", recon, "out/recon", fixture.ForwardTol)
	f.check("encoder after Forward", m.Encode(x), "out/latent", fixture.ForwardTol)

	dr := dev.Alloc(recon.Shape()...)
	defer dev.Release(dr)
	f.checkLoss(nn.MSE(dev, recon, f.upload(dev, "in/target"), dr))
	m.Backward(dr)
	f.checkGrads(m.Params())
}

func adam(t *testing.T, dev compute.Device) {
	f := load(t, "adam.st")
	var cfg nn.VelocityConfig
	f.meta("config", &cfg)
	lr, err := strconv.ParseFloat(f.Meta["lr"], 64)
	if err != nil {
		t.Fatalf("%s: metadata lr: %v", f.Name, err)
	}
	setup := func(f file) (*nn.Velocity, *nn.Adam) {
		m, err := nn.NewVelocity(dev, cfg, 7)
		if err != nil {
			f.t.Fatal(err)
		}
		f.loadParams(m.Params())
		return m, nn.NewAdam(dev, m.Params(), lr)
	}
	compare := func(f file, ps *nn.ParamSet, a *nn.Adam, step int, momentTol float64) {
		t := f.t
		t.Helper()
		n, expAvg, expAvgSq := a.State()
		if n != step {
			t.Errorf("Steps = %d, want %d", n, step)
		}
		values := ps.StateDict()
		s := strconv.Itoa(step)
		for _, p := range ps.List {
			for _, c := range []struct {
				what string
				got  compute.Array
				tol  float64
			}{{"p", values[p.Name], fixture.AdamTol}, {"m", expAvg[p.Name], momentTol}, {"v", expAvgSq[p.Name], momentTol}} {
				want := f.get(c.what + s + "/" + p.Name)
				if e := fixture.RelErr(c.got.Data, want.Data); e > c.tol {
					t.Errorf("%s of %s after step %d: relative error %.3g > %.3g", c.what, p.Name, step, e, c.tol)
				}
			}
		}
	}

	t.Run("one step on PyTorch's gradients", func(t *testing.T) {
		f := file{f.File, t}
		m, a := setup(f)
		defer m.Release()
		defer a.Release()
		grads := f.Prefixed("grad1")
		for _, p := range m.Params().List {
			g, ok := grads[p.Name]
			if !ok {
				t.Fatalf("%s: no grad1/%s", f.Name, p.Name)
			}
			dev.Upload(p.Grad, g.Data)
		}
		a.Step()
		compare(f, m.Params(), a, 1, fixture.AdamTol)
	})

	t.Run("three training steps", func(t *testing.T) {
		f := file{f.File, t}
		m, a := setup(f)
		defer m.Release()
		defer a.Release()
		for step := 1; step <= 3; step++ {
			s := strconv.Itoa(step)
			v := m.Forward(f.upload(dev, "in"+s+"/z"), f.get("in"+s+"/t").Data)
			dv := dev.Alloc(v.Shape()...)
			nn.MSEGrad(dev, v, f.upload(dev, "in"+s+"/target"), dv)
			m.Backward(dv)
			dev.Release(dv)
			a.Step()
			if step == 1 || step == 3 {
				compare(f, m.Params(), a, step, fixture.AdamMomentTol)
			}
		}
	})
}
