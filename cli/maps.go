package cli

import (
	"fmt"
	"path/filepath"

	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/data/nifti"
	"github.com/latentad/latentad/viz"
)

// Resample resizes a (D, H, W) map to (d, h, w) by trilinear interpolation with voxel
// centres aligned as PyTorch's interpolate(align_corners=False) does: each latent voxel
// stands for the block of volume voxels it was encoded from.
func Resample(src []float32, D, H, W, d, h, w int) []float32 {
	out := make([]float32, d*h*w)
	coord := func(i, in, out int) (int, int, float32) {
		x := (float32(i)+0.5)*float32(in)/float32(out) - 0.5
		x = max(x, 0)
		i0 := min(int(x), in-1)
		i1 := min(i0+1, in-1)
		return i0, i1, x - float32(i0)
	}
	for z := 0; z < d; z++ {
		z0, z1, fz := coord(z, D, d)
		for y := 0; y < h; y++ {
			y0, y1, fy := coord(y, H, h)
			for x := 0; x < w; x++ {
				x0, x1, fx := coord(x, W, w)
				at := func(a, b, c int) float32 { return src[(a*H+b)*W+c] }
				c00 := at(z0, y0, x0)*(1-fx) + at(z0, y0, x1)*fx
				c01 := at(z0, y1, x0)*(1-fx) + at(z0, y1, x1)*fx
				c10 := at(z1, y0, x0)*(1-fx) + at(z1, y0, x1)*fx
				c11 := at(z1, y1, x0)*(1-fx) + at(z1, y1, x1)*fx
				out[(z*h+y)*w+x] = (c00*(1-fy)+c01*fy)*(1-fz) + (c10*(1-fy)+c11*fy)*fz
			}
		}
	}
	return out
}

// writeVolumeMaps writes, for each scored volume, the map at the volume's resolution as
// <id>_anomaly.nii.gz with the source's affine (it overlays the CT in 3D Slicer or
// ITK-SNAP), and <id>_anomaly.png: three orthogonal slices through the map's maximum, the
// map as a heat overlay on the preprocessed CT.
func writeVolumeMaps(dir string, r *scoreResult) error {
	cohort := r.Set.Cohort
	// One heat scale for the whole run, so pictures compare: the overlay starts a quarter of
	// the way from the cohort's mean map level to the largest value of any map.
	var heatLo, heatHi float32
	for _, m := range r.Maps {
		var s float64
		for _, v := range m {
			s += float64(v)
			heatHi = max(heatHi, v)
		}
		heatLo += float32(s / float64(len(m)) / float64(len(r.Maps)))
	}
	heatLo += (heatHi - heatLo) / 4
	for i, m := range r.Maps {
		p := cohort.Patients[r.Rows[i]]
		src, err := nifti.ReadFile(p.ROIPath)
		if err != nil {
			return fmt.Errorf("patient %s: %w", p.ID, err)
		}
		dims := src.Shape()
		if len(dims) < 3 {
			return fmt.Errorf("patient %s (%s): not a 3-D volume", p.ID, p.ROIPath)
		}
		X, Y, Z := dims[0], dims[1], dims[2]
		full := m
		if len(m) != X*Y*Z {
			sh := r.Set.Array.Shape
			if len(sh) != 5 || sh[2]*sh[3]*sh[4] != len(m) {
				return fmt.Errorf("patient %s: a map of %d values fits neither the volume nor the latents", p.ID, len(m))
			}
			full = Resample(m, sh[2], sh[3], sh[4], Z, Y, X)
		}
		// (Z, Y, X) C order is NIfTI's Fortran (X, Y, Z) order: no reordering.
		vals := make([]float64, len(full))
		for j, v := range full {
			vals[j] = float64(v)
		}
		name := safeName(r.rowID(i)) + "_anomaly"
		if err := nifti.WriteFile(filepath.Join(dir, name+".nii.gz"), nifti.NewImage([]int{X, Y, Z}, nifti.Float32, vals, src.Affine)); err != nil {
			return fmt.Errorf("patient %s: %w", p.ID, err)
		}
		ct, err := data.PreprocessVolume(src, nil, r.Set.Prep)
		if err != nil {
			return fmt.Errorf("patient %s: %w", p.ID, err)
		}
		heat := viz.Volume{D: Z, H: Y, W: X, Data: full}
		z, y, x := heat.Argmax()
		img := viz.Slices(viz.Volume{D: Z, H: Y, W: X, Data: ct.Data}, z, y, x, -1, 1, &heat, heatLo, heatHi)
		if err := viz.SavePNG(filepath.Join(dir, name+".png"), img); err != nil {
			return err
		}
	}
	return nil
}
