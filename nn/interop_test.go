package nn

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/nn/internal/fixture"
)

// The interop tests run the seed's models at their real sizes (velocity model at the
// defaults, Tiny3DAE at base 16) against PyTorch live: the Go model's state dict goes to
// testdata/torch_ref.py, which loads it with strict key checking and returns float64
// outputs and gradients. They need /usr/bin/python3 with torch (CI installs python3-torch)
// and skip otherwise.

const python = "/usr/bin/python3"

func needTorch(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("interop with PyTorch skipped in -short mode")
	}
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skipf("PyTorch is not importable by %s (%v); install python3-torch to run this test", python, err)
	}
}

func runTorch(t *testing.T, in map[string]compute.Array, meta map[string]string) testFixture {
	t.Helper()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "in.st"), filepath.Join(dir, "out.st")
	if err := fixture.Write(src, in, meta); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", "torch_ref.py"), src, dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("torch_ref.py: %v\n%s", err, out)
	}
	f, err := fixture.Read(dst)
	if err != nil {
		t.Fatal(err)
	}
	return testFixture{f}
}

func TestVelocityDefaultsAgainstTorch(t *testing.T) {
	needTorch(t)
	// A small extent (the CPU's direct GEMM convolutions) and the latents' own 8×16×16,
	// where the CPU computes every convolution as Winograd F(2,3).
	for _, ext := range [][3]int{{2, 3, 4}, {8, 16, 16}} {
		t.Run(fmt.Sprintf("%dx%dx%d", ext[0], ext[1], ext[2]), func(t *testing.T) {
			dev := fallback.New()
			cfg := DefaultVelocityConfig()
			m, err := NewVelocity(dev, cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release()
			rng := rand.New(rand.NewPCG(1, 1))
			randomiseNorms(dev, m.Params(), rng)
			z, target := randArray(rng, 2, 128, ext[0], ext[1], ext[2]), randArray(rng, 2, 128, ext[0], ext[1], ext[2])
			ts := []float32{0.0625, 0.75}
			in := withPrefix("param/", m.Params().StateDict())
			in["in/z"], in["in/target"], in["in/t"] = z, target, compute.Array{Shape: []int{2}, Data: ts}
			c, _ := json.Marshal(cfg)
			ref := runTorch(t, in, map[string]string{"model": "velocity", "config": string(c)})
			checkKeys(t, ref, m.Params(), "")

			v := m.Forward(upload(dev, z), ts)
			checkTensor(t, "forward", v, ref.get(t, "out/v"), fwdTol)
			dv := dev.Alloc(v.Shape()...)
			if loss, want := MSE(dev, v, upload(dev, target), dv), metaFloat(t, ref, "loss"); relDiff(loss, want) > lossTol {
				t.Errorf("loss %v, want %v", loss, want)
			}
			m.Backward(dv)
			checkGradsAgainst(t, ref, m.Params())
		})
	}
}

func TestTiny3DAEBase16AgainstTorch(t *testing.T) {
	needTorch(t)
	dev := fallback.New()
	m, err := NewTiny3DAE(dev, 16, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	rng := rand.New(rand.NewPCG(2, 2))
	x, target := randArray(rng, 1, 1, 16, 16, 8), randArray(rng, 1, 1, 16, 16, 8)
	for i := range x.Data {
		x.Data[i] = float32(math.Tanh(float64(x.Data[i]))) // volumes live in [-1, 1]
		target.Data[i] = float32(math.Tanh(float64(target.Data[i])))
	}
	in := withPrefix("param/", m.Params().StateDict())
	in["in/x"], in["in/target"] = x, target
	ref := runTorch(t, in, map[string]string{"model": "ae", "config": `{"base": 16}`})
	checkKeys(t, ref, m.Params(), "")

	xt := upload(dev, x)
	checkTensor(t, "encoder", m.Encode(xt), ref.get(t, "out/latent"), fwdTol)
	recon := m.Forward(xt)
	checkTensor(t, "reconstruction", recon, ref.get(t, "out/recon"), fwdTol)
	dr := dev.Alloc(recon.Shape()...)
	if loss, want := MSE(dev, recon, upload(dev, target), dr), metaFloat(t, ref, "loss"); relDiff(loss, want) > lossTol {
		t.Errorf("loss %v, want %v", loss, want)
	}
	m.Backward(dr)
	checkGradsAgainst(t, ref, m.Params())
}

func checkGradsAgainst(t *testing.T, ref testFixture, ps *ParamSet) {
	t.Helper()
	worst, worstName := 0.0, ""
	for _, p := range ps.List {
		want := ref.get(t, "grad/"+p.Name)
		e := relErr(compute.ToHost(p.Grad), want.Data)
		if e > gradTol {
			t.Errorf("gradient of %s: relative error %.3g > %.3g", p.Name, e, gradTol)
		}
		if e > worst {
			worst, worstName = e, p.Name
		}
	}
	t.Logf("worst gradient: %s, relative error %.3g", worstName, worst)
}
