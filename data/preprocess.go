package data

import (
	"fmt"
	"math"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/data/nifti"
)

// Defaults of SPEC.md section 1.
var (
	DefaultHUWindow      = [2]float64{-1000, 400}
	DefaultExpectedShape = [3]int{128, 128, 64}
)

// Preprocess holds the volume preprocessing settings.
type Preprocess struct {
	// ExpectedShape (X, Y, Z) is checked when non-zero.
	ExpectedShape [3]int
	// HUWindow is [lo, hi]; the zero value means DefaultHUWindow.
	HUWindow [2]float64
	// ApplyLVMask multiplies by the LV mask (mask > 0) when the patient has one.
	ApplyLVMask bool
}

func (p Preprocess) window() (lo, hi float64, err error) {
	w := p.HUWindow
	if w == [2]float64{} {
		w = DefaultHUWindow
	}
	if !(w[0] < w[1]) || math.IsInf(w[0], 0) || math.IsInf(w[1], 0) {
		return 0, 0, fmt.Errorf("HU window [%g, %g] is empty: want LO < HI (--hu_window LO HI)", w[0], w[1])
	}
	return w[0], w[1], nil
}

// spatialShape returns (X, Y, Z) of a 3-D image, allowing trailing singleton dimensions
// (X, Y, Z, 1) as some tools write them.
func spatialShape(im *nifti.Image) ([3]int, bool) {
	d := im.Dims
	for len(d) > 3 && d[len(d)-1] == 1 {
		d = d[:len(d)-1]
	}
	if len(d) != 3 {
		return [3]int{}, false
	}
	return [3]int{d[0], d[1], d[2]}, true
}

// LoadVolume reads a volume (and, when maskPath is not "", its mask) and preprocesses it.
// Errors name the file.
func LoadVolume(roiPath, maskPath string, p Preprocess) (compute.Array, error) {
	im, err := nifti.ReadFile(roiPath)
	if err != nil {
		return compute.Array{}, err
	}
	var mask *nifti.Image
	if maskPath != "" {
		if mask, err = nifti.ReadFile(maskPath); err != nil {
			return compute.Array{}, err
		}
	}
	a, err := PreprocessVolume(im, mask, p)
	if err != nil {
		return compute.Array{}, fmt.Errorf("%s: %w", roiPath, err)
	}
	return a, nil
}

// PreprocessVolume applies SPEC.md section 1 to a CT volume of shape (X, Y, Z):
// NaN and ±Inf become 0; values are clipped to the HU window [lo, hi], mapped to [0, 1] by
// (v - lo) / (hi - lo + 1e-8), clipped to [0, 1] and mapped to [-1, 1] by 2v - 1; when a
// mask is given the result is multiplied by (mask > 0). The result is the (1, Z, Y, X)
// float32 array, computed in float64 and rounded once.
//
// Because NIfTI data is in Fortran order (x fastest), its linear order already is the C
// order of (Z, Y, X): the reorder is free.
func PreprocessVolume(im, mask *nifti.Image, p Preprocess) (compute.Array, error) {
	shape, ok := spatialShape(im)
	if !ok {
		return compute.Array{}, fmt.Errorf("volume has shape %v, want a 3-D (X, Y, Z) volume", im.Dims)
	}
	if p.ExpectedShape != [3]int{} && shape != p.ExpectedShape {
		return compute.Array{}, fmt.Errorf("volume has shape (%d, %d, %d), expected (%d, %d, %d) (--expected_shape X Y Z)",
			shape[0], shape[1], shape[2], p.ExpectedShape[0], p.ExpectedShape[1], p.ExpectedShape[2])
	}
	lo, hi, err := p.window()
	if err != nil {
		return compute.Array{}, err
	}
	if mask != nil {
		ms, ok := spatialShape(mask)
		if !ok || ms != shape {
			return compute.Array{}, fmt.Errorf("LV mask has shape %v, the volume (%d, %d, %d)", mask.Dims, shape[0], shape[1], shape[2])
		}
	}
	out := compute.NewArray(1, shape[2], shape[1], shape[0])
	den := hi - lo + 1e-8
	for i, v := range im.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		v = min(max(v, lo), hi)
		v = (v - lo) / den
		v = min(max(v, 0), 1)
		v = 2*v - 1
		if mask != nil {
			m := 0.0
			if mask.Data[i] > 0 {
				m = 1
			}
			v *= m
		}
		out.Data[i] = float32(v)
	}
	return out, nil
}
