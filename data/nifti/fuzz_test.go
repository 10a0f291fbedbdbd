package nifti

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead feeds mutated NIfTI files to Read: it must return an image or an error, never
// panic, and never hold more voxels than the input can supply.
func FuzzRead(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.nii*")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(im.Data) != im.NumVoxels() {
			t.Fatalf("%d values for shape %v", len(im.Data), im.Dims)
		}
		_ = im.Affine
	})
}
