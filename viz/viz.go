// Package viz draws volumes as pictures people look at: the three orthogonal slices
// (axial, coronal, sagittal) through a chosen voxel, in grey, optionally with a heat map
// laid over them, as PNG. Volumes are (D, H, W) = (Z, Y, X) float32 arrays, the layout
// latentad's preprocessing produces.
package viz

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"

	"github.com/latentad/latentad/internal/atomicfile"
)

// Volume is a (D, H, W) array.
type Volume struct {
	D, H, W int
	Data    []float32
}

// At returns v[z, y, x].
func (v Volume) At(z, y, x int) float32 { return v.Data[(z*v.H+y)*v.W+x] }

// Argmax returns the (z, y, x) of the largest value.
func (v Volume) Argmax() (int, int, int) {
	best, bi := float32(math.Inf(-1)), 0
	for i, x := range v.Data {
		if x > best {
			best, bi = x, i
		}
	}
	return bi / (v.H * v.W), bi / v.W % v.H, bi % v.W
}

// Slices renders the axial (z), coronal (y) and sagittal (x) planes through (z, y, x) side
// by side, each upscaled by an integer factor so small volumes stay visible. Grey levels
// map [lo, hi] to black..white; when heat is not nil (same shape as v), values above
// heatLo are blended in as a red-yellow overlay that saturates at heatHi (heat's own
// maximum when heatHi ≤ heatLo). Giving every picture of a cohort the same heatLo and heatHi
// makes them comparable: a normal heart then shows little heat.
func Slices(v Volume, z, y, x int, lo, hi float32, heat *Volume, heatLo, heatHi float32) *image.RGBA {
	scale := max(1, 192/max(v.D, v.H, v.W))
	// Panels: axial H×W, coronal D×W, sagittal D×H (rows × cols), top of the picture = high index
	// for D so the heart's base is up as radiologists show it.
	type panel struct {
		rows, cols int
		at         func(r, c int) (int, int, int)
	}
	panels := []panel{
		{v.H, v.W, func(r, c int) (int, int, int) { return z, r, c }},
		{v.D, v.W, func(r, c int) (int, int, int) { return v.D - 1 - r, y, c }},
		{v.D, v.H, func(r, c int) (int, int, int) { return v.D - 1 - r, c, x }},
	}
	width, height := 0, 0
	for _, p := range panels {
		width += p.cols*scale + 4
		height = max(height, p.rows*scale)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	hmax := heatHi
	if heat != nil && hmax <= heatLo {
		for _, h := range heat.Data {
			hmax = max(hmax, h)
		}
	}
	off := 0
	for _, p := range panels {
		for r := 0; r < p.rows; r++ {
			for c := 0; c < p.cols; c++ {
				zz, yy, xx := p.at(r, c)
				g := (v.At(zz, yy, xx) - lo) / (hi - lo)
				g = min(max(g, 0), 1)
				col := color.RGBA{uint8(255 * g), uint8(255 * g), uint8(255 * g), 255}
				if heat != nil && hmax > heatLo {
					h := (heat.At(zz, yy, xx) - heatLo) / (hmax - heatLo)
					if h > 0 {
						h = min(h, 1)
						a := 0.25 + 0.5*h
						hr, hg := 1.0, float64(h) // red → yellow
						col.R = uint8(float64(col.R)*(1-float64(a)) + 255*hr*float64(a))
						col.G = uint8(float64(col.G)*(1-float64(a)) + 255*hg*float64(a))
						col.B = uint8(float64(col.B) * (1 - float64(a)))
					}
				}
				for dy := 0; dy < scale; dy++ {
					for dx := 0; dx < scale; dx++ {
						img.SetRGBA(off+c*scale+dx, r*scale+dy, col)
					}
				}
			}
		}
		off += p.cols*scale + 4
	}
	return img
}

// Stack puts pictures one above the other (e.g. input above reconstruction).
func Stack(imgs ...*image.RGBA) *image.RGBA {
	w, h := 0, 0
	for _, m := range imgs {
		w = max(w, m.Bounds().Dx())
		h += m.Bounds().Dy() + 4
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	y := 0
	for _, m := range imgs {
		for yy := 0; yy < m.Bounds().Dy(); yy++ {
			for xx := 0; xx < m.Bounds().Dx(); xx++ {
				out.Set(xx, y+yy, m.At(xx, yy))
			}
		}
		y += m.Bounds().Dy() + 4
	}
	return out
}

// LoadPNG reads a PNG into an RGBA picture (to Stack it with others).
func LoadPNG(path string) (*image.RGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := image.NewRGBA(m.Bounds())
	draw.Draw(out, out.Bounds(), m, m.Bounds().Min, draw.Src)
	return out, nil
}

// SavePNG writes img to path atomically.
func SavePNG(path string, img image.Image) error {
	return atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) })
}
