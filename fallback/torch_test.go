package fallback

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/latentad/latentad/compute"
)

// readTensors reads testdata/ops.bin (written by testdata/gen_fixtures.py): named float32
// tensors with their shapes.
func readTensors(t *testing.T) map[string]compute.Array {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "ops.bin"))
	if err != nil {
		t.Fatalf("reading the fixture (regenerate with /usr/bin/python3 fallback/testdata/gen_fixtures.py): %v", err)
	}
	bad := func(what string) { t.Fatalf("testdata/ops.bin: %s; regenerate it", what) }
	if len(raw) < 8 || string(raw[:4]) != "LTF1" {
		bad("not an LTF1 container")
	}
	count := int(binary.LittleEndian.Uint32(raw[4:]))
	raw = raw[8:]
	out := map[string]compute.Array{}
	for range count {
		if len(raw) < 3 {
			bad("truncated header")
		}
		nl := int(binary.LittleEndian.Uint16(raw))
		if len(raw) < 3+nl {
			bad("truncated name")
		}
		name := string(raw[2 : 2+nl])
		nd := int(raw[2+nl])
		raw = raw[3+nl:]
		if len(raw) < 4*nd {
			bad("truncated shape of " + name)
		}
		a := compute.Array{Shape: make([]int, nd)}
		for i := range nd {
			a.Shape[i] = int(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		raw = raw[4*nd:]
		n := compute.Numel(a.Shape)
		if len(raw) < 4*n {
			bad("truncated data of " + name)
		}
		a.Data = make([]float32, n)
		for i := range a.Data {
			a.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		raw = raw[4*n:]
		out[name] = a
	}
	return out
}

// closeTo compares normwise: max|got-want| ≤ tol·max|want|. These checks are about reading
// each op as PyTorch does (a wrong layout or formula is off by O(1)); the per-element
// precision is compute/devicetest's job. tol = 1e-5 covers float32 sums of a few hundred
// terms in different orders (each element within ~√L·2⁻²⁴ of Σ|terms|, a few times |y|).
func closeTo(t *testing.T, what string, got []float32, want compute.Array) {
	t.Helper()
	const tol = 1e-5
	if len(got) != len(want.Data) {
		t.Fatalf("%s: %d values, PyTorch has %d", what, len(got), len(want.Data))
	}
	var maxRef, maxErr float64
	worst := 0
	for i, w := range want.Data {
		maxRef = max(maxRef, math.Abs(float64(w)))
		if e := math.Abs(float64(got[i] - w)); e > maxErr || e != e {
			maxErr, worst = e, i
		}
	}
	if !(maxErr <= tol*maxRef) {
		t.Errorf("%s: max error %.3g (at %d: %v, PyTorch %v) exceeds %.0e × max|y| = %.3g",
			what, maxErr, worst, got[worst], want.Data[worst], tol, tol*maxRef)
	}
}

func TestMatchesTorch(t *testing.T) {
	fx := readTensors(t)
	get := func(name string) compute.Array {
		a, ok := fx[name]
		if !ok {
			t.Fatalf("testdata/ops.bin has no tensor %q; regenerate it", name)
		}
		return a
	}
	dev := New()
	up := func(name string) *compute.Tensor {
		a := get(name)
		return compute.FromHost(dev, a.Data, a.Shape...)
	}
	like := func(name string) *compute.Tensor { return dev.Alloc(get(name).Shape...) }

	for _, c := range []struct {
		prefix string
		p      compute.Conv
	}{
		{"conv_k3s1p1", compute.Conv3x3},
		{"conv_k4s2p1", compute.ConvS2P1},
		{"conv_k1s1p0", compute.Conv{Stride: [3]int{1, 1, 1}}},
	} {
		t.Run(c.prefix, func(t *testing.T) {
			n := func(s string) string { return c.prefix + "." + s }
			x, w, b, dy := up(n("x")), up(n("w")), up(n("b")), up(n("dy"))
			y, dx, dw, db := like(n("y")), like(n("dx")), like(n("dw")), like(n("db"))
			dev.Conv3d(x, w, b, y, c.p)
			dev.Conv3dBackwardData(dy, w, dx, c.p)
			dev.Conv3dBackwardWeight(x, dy, dw, db, c.p)
			closeTo(t, "y", compute.ToHost(y), get(n("y")))
			closeTo(t, "dx", compute.ToHost(dx), get(n("dx")))
			closeTo(t, "dw", compute.ToHost(dw), get(n("dw")))
			closeTo(t, "db", compute.ToHost(db), get(n("db")))
		})
	}
	t.Run("conv_transpose3d", func(t *testing.T) {
		y := like("convT.y")
		dev.Conv3dBackwardData(up("convT.x"), up("convT.w"), y, compute.ConvS2P1)
		closeTo(t, "y", compute.ToHost(y), get("convT.y"))
	})
	t.Run("group_norm", func(t *testing.T) {
		x, gamma, beta, dy := up("gn.x"), up("gn.gamma"), up("gn.beta"), up("gn.dy")
		y, mean, rstd := like("gn.y"), dev.Alloc(2, 4), dev.Alloc(2, 4)
		dx, dg, dbeta := like("gn.dx"), like("gn.dgamma"), like("gn.dbeta")
		dev.GroupNormForward(x, gamma, beta, y, mean, rstd, 4, 1e-5)
		dev.GroupNormBackward(x, dy, gamma, mean, rstd, dx, dg, dbeta, 4)
		closeTo(t, "y", compute.ToHost(y), get("gn.y"))
		closeTo(t, "mean", compute.ToHost(mean), get("gn.mean"))
		closeTo(t, "rstd", compute.ToHost(rstd), get("gn.rstd"))
		closeTo(t, "dx", compute.ToHost(dx), get("gn.dx"))
		closeTo(t, "dgamma", compute.ToHost(dg), get("gn.dgamma"))
		closeTo(t, "dbeta", compute.ToHost(dbeta), get("gn.dbeta"))
	})
	for _, act := range []compute.Act{compute.ReLU, compute.SiLU, compute.Tanh} {
		t.Run(act.String(), func(t *testing.T) {
			x, dy := up("act.x"), up("act.dy")
			y, dx := like("act.x"), like("act.x")
			dev.ActForward(act, x, y)
			dev.ActBackward(act, x, y, dy, dx)
			closeTo(t, "y", compute.ToHost(y), get(fmt.Sprintf("act.%v.y", act)))
			closeTo(t, "dx", compute.ToHost(dx), get(fmt.Sprintf("act.%v.dx", act)))
		})
	}
}
