package eval

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"
)

// decodePNG reads a PNG written by this package and checks its size in pixels.
func decodePNG(t *testing.T, path string, panels int) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	side := int(PanelSize / vg.Inch * vgimg.DefaultDPI) // the canvas rounds w·dpi to whole pixels
	if b := img.Bounds(); b.Dx() != panels*side || b.Dy() != side {
		t.Errorf("%s: %dx%d pixels; want %dx%d", path, b.Dx(), b.Dy(), panels*side, side)
	}
	return img
}

// countColor counts pixels within tol of (r, g, b) (8-bit).
func countColor(img image.Image, r, g, b, tol int) int {
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			R, G, B, _ := img.At(x, y).RGBA()
			if abs(int(R>>8)-r) <= tol && abs(int(G>>8)-g) <= tol && abs(int(B>>8)-b) <= tol {
				n++
			}
		}
	}
	return n
}

func abs(x int) int { return max(x, -x) }

// blend is the colour of c at alpha a (of 255) over white, as the PNG holds it.
func blend(c, a int) int { return (c*a + 255*(255-a)) / 255 }

func TestMetricsPNG(t *testing.T) {
	g := goldenByName(t, "continuous_50v70")
	path := filepath.Join(t.TempDir(), "roc.png")
	if err := SaveMetricsPNG(path, "test", g.Scores, g.Labels); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, path, 2)
	// Both classes' semi-transparent fills must be visible (they overlap on these scores).
	for _, c := range []struct {
		name string
		col  [3]int
	}{{"normal", [3]int{31, 119, 180}}, {"anomaly", [3]int{214, 39, 40}}} {
		r, gg, b := blend(c.col[0], 120), blend(c.col[1], 120), blend(c.col[2], 120)
		if n := countColor(img, r, gg, b, 3); n < 2000 {
			t.Errorf("%s histogram fill (%d,%d,%d) covers %d pixels; expected a visible area", c.name, r, gg, b, n)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the plot: %v", entries)
	}
}

func TestROCsAndHistogramPNG(t *testing.T) {
	dir := t.TempDir()
	var curves []NamedROC
	for _, name := range []string{"ties_rounded", "large_ties", "inverted", "continuous_50v70"} {
		g := goldenByName(t, name)
		r, err := ROCCurve(g.Scores, g.Labels, true)
		if err != nil {
			t.Fatal(err)
		}
		curves = append(curves, NamedROC{Name: name, Curve: r})
	}
	if err := SaveROCsPNG(filepath.Join(dir, "rocs.png"), "all methods", curves); err != nil {
		t.Fatal(err)
	}
	decodePNG(t, filepath.Join(dir, "rocs.png"), 1)

	// One distinct score must still draw (a single bin of some width).
	g := goldenByName(t, "all_equal")
	if err := SaveHistogramPNG(filepath.Join(dir, "hist.png"), "all equal", g.Scores, g.Labels); err != nil {
		t.Fatal(err)
	}
	decodePNG(t, filepath.Join(dir, "hist.png"), 1)

	if err := SaveROCsPNG(filepath.Join(dir, "bad.png"), "x", []NamedROC{{Name: "empty"}}); err == nil {
		t.Error("empty curve: no error")
	}
	if err := SaveHistogramPNG(filepath.Join(dir, "bad.png"), "x", []float64{1}, []int{1}); err == nil {
		t.Error("one class: no error")
	}
	if err := SaveMetricsPNG(filepath.Join(dir, "no", "such", "dir.png"), "x", g.Scores, g.Labels); err == nil {
		t.Error("missing directory: no error")
	}
}
