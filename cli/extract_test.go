package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/internal/pyfix"
)

// TestExtractMatchesPyTorch: volumes written by nibabel (int16 with slope/intercept, gzip,
// a NaN voxel, LV masks) encoded by a torch.save'd seed Tiny3DAE give PyTorch's latents
// within 1e-4 relative (max |Δ| / max |ref|; float32 convolutions summed in another order
// differ by ~1e-6), and index.csv carries the metadata's ids and labels (issue 4).
func TestExtractMatchesPyTorch(t *testing.T) {
	pyfix.Require(t, "nibabel")
	dir := pyfix.Run(t, "cli/testdata/gen_extract.py")
	out := filepath.Join(t.TempDir(), "lat")
	mustRun(t, "extract", "--ae_model_path", filepath.Join(dir, "ae.pth"), "--root", filepath.Join(dir, "cohort"),
		"--metadata_csv", filepath.Join(dir, "cohort", "Combined_Labels.csv"), "--apply_lv_mask",
		"--expected_shape", "16", "--expected_shape", "16", "--expected_shape", "8", "--out", out, "--device", "cpu")
	got, err := data.ReadLatents(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := data.ReadNPY(filepath.Join(dir, "expect.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Array.Data) != len(want.Data) || len(got.Array.Shape) != 5 || got.Array.Shape[1] != 128 {
		t.Fatalf("latents %v, PyTorch %v", got.Array.Shape, want.Shape)
	}
	var maxD, maxR float64
	for i, w := range want.Data {
		maxD = math.Max(maxD, math.Abs(float64(got.Array.Data[i]-w)))
		maxR = math.Max(maxR, math.Abs(float64(w)))
	}
	t.Logf("max |Δ| / max |ref| = %.2g", maxD/maxR)
	if maxD > 1e-4*maxR {
		t.Errorf("latents differ from PyTorch's: max |Δ| %.3g vs max |ref| %.3g", maxD, maxR)
	}
	var ex struct {
		IDs    []string `json:"ids"`
		Labels []int    `json:"labels"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	for i, r := range got.Index {
		if r.ID != ex.IDs[i] || r.Label != ex.Labels[i] {
			t.Errorf("index row %d: %s,%d; want %s,%d", i, r.ID, r.Label, ex.IDs[i], ex.Labels[i])
		}
	}
}
