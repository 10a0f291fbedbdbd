package data

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeNPY: a hostile .npy gives an array or an error, never a panic, and never an
// array whose data does not match its shape.
func FuzzDecodeNPY(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/npy/*.npy")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeNPY(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := a.Check(); err != nil {
			t.Fatal(err)
		}
	})
}
