package eval

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"github.com/latentad/latentad/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// NamedROC is one curve of a ROC figure; its legend shows Name and the curve's AUC.
type NamedROC struct {
	Name  string
	Curve ROC
}

// Colours of the two classes in histograms: normal blue, anomaly red, both semi-transparent
// so the overlap stays visible.
var (
	normalColor  = color.NRGBA{R: 31, G: 119, B: 180, A: 120}
	anomalyColor = color.NRGBA{R: 214, G: 39, B: 40, A: 120}
)

// ROCPlot draws one or more ROC curves with the chance diagonal; the legend gives each
// curve's AUC.
func ROCPlot(title string, curves []NamedROC) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "False positive rate (1 - specificity)"
	p.Y.Label.Text = "True positive rate (sensitivity)"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Add(plotter.NewGrid())

	diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return nil, err
	}
	diag.Color = color.Gray{Y: 140}
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(diag)
	p.Legend.Add("chance (AUC = 0.5)", diag)

	for k, c := range curves {
		if len(c.Curve.FPR) != len(c.Curve.TPR) || len(c.Curve.FPR) < 2 {
			return nil, fmt.Errorf("eval: ROC plot: curve %q has %d FPR and %d TPR points; it needs at least 2 of each",
				c.Name, len(c.Curve.FPR), len(c.Curve.TPR))
		}
		pts := make(plotter.XYs, len(c.Curve.FPR))
		for i := range pts {
			pts[i] = plotter.XY{X: c.Curve.FPR[i], Y: c.Curve.TPR[i]}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("eval: ROC plot: curve %q: %w", c.Name, err)
		}
		l.Width = vg.Points(1.8)
		l.Color = plotutil.DarkColors[k%len(plotutil.DarkColors)]
		if k >= len(plotutil.DarkColors) {
			l.Dashes = plotutil.Dashes(k / len(plotutil.DarkColors))
		}
		p.Add(l)
		name := c.Name
		if name == "" {
			name = "ROC"
		}
		p.Legend.Add(fmt.Sprintf("%s (AUC = %.3f)", name, c.Curve.AUC()), l)
	}
	// Good curves hug the top-left corner, so the legend goes bottom right.
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), vg.Points(6)
	return p, nil
}

// HistogramPlot overlays the score histograms of the normal (label 0) and anomalous (label 1)
// samples on shared bins, each scaled to unit area so classes of different sizes compare.
func HistogramPlot(title string, scores []float64, labels []int) (*plot.Plot, error) {
	nPos, nNeg, err := checkInput(scores, labels)
	if err != nil {
		return nil, err
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range scores {
		lo, hi = math.Min(lo, s), math.Max(hi, s)
	}
	if hi == lo {
		// One distinct score: give the single bin some width around it.
		d := math.Max(math.Abs(lo)*0.05, 0.5)
		lo, hi = lo-d, hi+d
	}
	// Rice's rule, 2·n^(1/3) bins, kept within [5, 40]: enough shape for a few hundred
	// scores without turning small test sets into combs.
	nb := int(math.Ceil(2 * math.Cbrt(float64(len(scores)))))
	nb = max(5, min(40, nb))
	width := (hi - lo) / float64(nb)
	counts := [2][]float64{make([]float64, nb), make([]float64, nb)}
	for i, s := range scores {
		b := int((s - lo) / width)
		b = max(0, min(nb-1, b)) // the maximum falls in the last bin
		counts[labels[i]][b]++
	}

	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "Anomaly score"
	p.Y.Label.Text = "Density"
	p.Add(plotter.NewGrid())
	for _, cls := range []struct {
		label int
		n     int
		name  string
		fill  color.NRGBA
	}{{0, nNeg, "normal", normalColor}, {1, nPos, "anomaly", anomalyColor}} {
		bins := make([]plotter.HistogramBin, nb)
		for b := range bins {
			bins[b] = plotter.HistogramBin{
				Min:    lo + float64(b)*width,
				Max:    lo + float64(b+1)*width,
				Weight: counts[cls.label][b] / (float64(cls.n) * width),
			}
		}
		h := &plotter.Histogram{Bins: bins, Width: width, FillColor: cls.fill, LineStyle: plotter.DefaultLineStyle}
		h.LineStyle.Width = vg.Points(0.5)
		edge := cls.fill
		edge.A = 255
		h.LineStyle.Color = edge
		p.Add(h)
		p.Legend.Add(fmt.Sprintf("%s (n = %d)", cls.name, cls.n), h)
	}
	// Head room above the tallest bar for the legend.
	var top float64
	for c, n := range []int{nNeg, nPos} {
		for _, k := range counts[c] {
			top = math.Max(top, k/(float64(n)*width))
		}
	}
	p.Y.Min, p.Y.Max = 0, top*1.25
	p.Legend.Top = true
	return p, nil
}

// SavePNG draws the plots side by side, each panel w × h, into one PNG at path. The file is
// written to a temporary name and renamed, so a failed run leaves no half image.
func SavePNG(path string, w, h vg.Length, panels ...*plot.Plot) error {
	if len(panels) == 0 {
		return fmt.Errorf("eval: %s: no plots to save", path)
	}
	img := vgimg.New(w*vg.Length(len(panels)), h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 6,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 3}
	canvases := plot.Align([][]*plot.Plot{panels}, tiles, dc)
	for k, p := range panels {
		p.Draw(canvases[0][k])
	}
	if err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w)
		return err
	}); err != nil {
		return fmt.Errorf("eval: plot: %w", err)
	}
	return nil
}

// PanelSize is the size of one panel in the PNGs written here.
const PanelSize = 5 * vg.Inch

// SaveMetricsPNG writes the figure of `latentad metrics --plot`: the ROC curve (left) and the
// two class histograms (right).
func SaveMetricsPNG(path, title string, scores []float64, labels []int) error {
	r, err := ROCCurve(scores, labels, true)
	if err != nil {
		return err
	}
	rp, err := ROCPlot("ROC curve", []NamedROC{{Name: title, Curve: r}})
	if err != nil {
		return err
	}
	hp, err := HistogramPlot("Score distributions", scores, labels)
	if err != nil {
		return err
	}
	return SavePNG(path, PanelSize, PanelSize, rp, hp)
}

// SaveROCsPNG writes several ROC curves in one figure (the comparison of `latentad eval`).
func SaveROCsPNG(path, title string, curves []NamedROC) error {
	p, err := ROCPlot(title, curves)
	if err != nil {
		return err
	}
	return SavePNG(path, PanelSize, PanelSize, p)
}

// SaveHistogramPNG writes one method's class histograms.
func SaveHistogramPNG(path, title string, scores []float64, labels []int) error {
	p, err := HistogramPlot(title, scores, labels)
	if err != nil {
		return err
	}
	return SavePNG(path, PanelSize, PanelSize, p)
}
