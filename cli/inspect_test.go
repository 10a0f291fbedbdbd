package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// inspectMain runs the command line with captured output.
func inspectMain(args ...string) (int, string, string) {
	var o, e bytes.Buffer
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	code := Main(append([]string{"latentad"}, args...))
	return code, o.String(), e.String()
}

// nibabelExpect is the part of data/nifti/testdata/expect.json (numpy's statistics of
// nibabel's get_fdata) that inspect reports.
type nibabelExpect struct {
	Shape       []int         `json:"shape"`
	Datatype    string        `json:"datatype"`
	Affine      [4][4]float64 `json:"affine"`
	NanMin      float64       `json:"nanmin"`
	NanMax      float64       `json:"nanmax"`
	NanMean     float64       `json:"nanmean"`
	NanStd      float64       `json:"nanstd"`
	NanCount    int           `json:"nan_count"`
	Percentiles []float64     `json:"percentiles"`
}

func TestInspectJSONMatchesNumpy(t *testing.T) {
	raw, err := os.ReadFile("../data/nifti/testdata/expect.json")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]map[string]nibabelExpect
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	var files []string
	for name := range all["own"] {
		files = append(files, filepath.Join("../data/nifti/testdata", name))
	}
	// A truncated file among good ones: reported, the others still printed, exit 1.
	good, err := os.ReadFile("../data/nifti/testdata/be_float64.nii")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "cut.nii")
	if err := os.WriteFile(bad, good[:400], 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"inspect", "--json", files[0], bad}, files[1:]...)
	code, out, errs := inspectMain(args...)
	if code != 1 || !strings.Contains(errs, bad) {
		t.Fatalf("exit %d, stderr %q: want exit 1 naming %s", code, errs, bad)
	}
	var got []struct {
		File   string
		Error  string
		Dims   []int
		Dtype  string `json:"datatype"`
		Affine [4][4]float64
		Stats  struct {
			Min, Max, Mean, Std, P1, P50, P99 float64
			NaNCount                          int `json:"nan_count"`
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, out)
	}
	if len(got) != len(files)+1 {
		t.Fatalf("%d objects for %d files", len(got), len(files)+1)
	}
	for _, g := range got {
		if g.File == bad {
			if !strings.Contains(g.Error, "truncated") {
				t.Errorf("bad file's error %q", g.Error)
			}
			continue
		}
		w, ok := all["own"][filepath.Base(g.File)]
		if !ok {
			t.Fatalf("unexpected file %s", g.File)
		}
		if g.Error != "" || g.Dtype != w.Datatype || len(g.Dims) != len(w.Shape) {
			t.Errorf("%s: %+v, nibabel %+v", g.File, g, w)
		}
		// nibabel builds qform affines in long double: a few ulps apart.
		for i := range 4 {
			for j := range 4 {
				if math.Abs(g.Affine[i][j]-w.Affine[i][j]) > 1e-12*(1+math.Abs(w.Affine[i][j])) {
					t.Errorf("%s: affine[%d][%d] %g, nibabel %g", g.File, i, j, g.Affine[i][j], w.Affine[i][j])
				}
			}
		}
		// min, max and NaN count are exact; mean, std and the percentiles are computed
		// in float64 in another order than numpy's (pairwise sums, its lerp), so they
		// agree to a few ulps of the value range.
		tol := 1e-12 * math.Max(1, w.NanMax-w.NanMin)
		s := g.Stats
		if s.Min != w.NanMin || s.Max != w.NanMax || s.NaNCount != w.NanCount {
			t.Errorf("%s: min %g max %g NaN %d; numpy %g %g %d", g.File, s.Min, s.Max, s.NaNCount, w.NanMin, w.NanMax, w.NanCount)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"mean", s.Mean, w.NanMean}, {"std", s.Std, w.NanStd}, {"p1", s.P1, w.Percentiles[0]}, {"p50", s.P50, w.Percentiles[1]}, {"p99", s.P99, w.Percentiles[2]}} {
			if math.Abs(c.got-c.want) > tol {
				t.Errorf("%s: %s %.17g, numpy %.17g", g.File, c.name, c.got, c.want)
			}
		}
	}
}

func TestInspectTable(t *testing.T) {
	raw, err := os.ReadFile("../data/nifti/testdata/expect.json")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]map[string]nibabelExpect
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	w := all["own"]["int16_scaled.nii.gz"]
	file := "../data/nifti/testdata/int16_scaled.nii.gz"
	code, out, errs := inspectMain("inspect", file, "missing.nii")
	if code != 1 || !strings.Contains(errs, "missing.nii") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{file, "NIfTI-1 (n+1), little-endian, gzip", "5 × 4 × 3", "int16", "scl_slope 0.5, scl_inter -1024.25 (applied)",
		"qform 1 (scanner), sform 2 (aligned)", "affine (sform)", fmt.Sprintf("min %.6g  max %.6g", w.NanMin, w.NanMax),
		"missing.nii\n  error: open missing.nii"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _, _ := inspectMain("inspect"); code != 2 {
		t.Errorf("no files: exit %d, want 2 (usage)", code)
	}
}
