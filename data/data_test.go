package data

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/latentad/latentad/compute"
)

const cohortDir = "testdata/cohort"

func mustNPY(t *testing.T, path string) compute.Array {
	t.Helper()
	a, err := ReadNPY(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sameArray requires bit-equal data: every fixture is either numpy's float32 bytes or a
// float64 value rounded once to float32, which Go reproduces exactly.
func sameArray(t *testing.T, what string, got, want compute.Array) {
	t.Helper()
	if !reflect.DeepEqual(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	for i := range want.Data {
		g, w := got.Data[i], want.Data[i]
		if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
			t.Fatalf("%s: element %d = %.9g, want %.9g", what, i, g, w)
		}
	}
}

func TestReadNPY(t *testing.T) {
	ref := mustNPY(t, "testdata/npy/f4.npy")
	if !reflect.DeepEqual(ref.Shape, []int{2, 3, 2, 2, 3}) {
		t.Fatalf("f4.npy shape %v", ref.Shape)
	}
	cases := []struct{ file, like string }{
		{"be_f4.npy", "f4.npy"},
		{"fortran_f4.npy", "f4.npy"},
		{"v2_f4.npy", "f4.npy"},
		{"f8.npy", "f8_as_f4.npy"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			sameArray(t, c.file, mustNPY(t, "testdata/npy/"+c.file), mustNPY(t, "testdata/npy/"+c.like))
		})
	}
	oneD := mustNPY(t, "testdata/npy/f4_1d.npy")
	if !reflect.DeepEqual(oneD.Shape, []int{5}) || oneD.Data[4] != 4 {
		t.Errorf("1-D array read as %v %v", oneD.Shape, oneD.Data)
	}
}

func TestNPYErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/npy/f4.npy")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"int64", nil, `dtype "<i8" is not supported`},
		{"truncated", good[:len(good)-10], "truncated: shape [2 3 2 2 3] of <f4 needs 288 bytes of data, the file holds 278"},
		{"not npy", []byte("PK\x03\x04 a zip, not npy"), "not a .npy file"},
		{"header cut", good[:40], "truncated .npy header"},
		{"bad shape", bytes.Replace(good, []byte("(2, 3, 2, 2, 3)"), []byte("(2, x, 2, 2, 3)"), 1), "malformed .npy header (shape)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := "testdata/npy/i8.npy"
			if c.data != nil {
				path = filepath.Join(dir, c.name+".npy")
				if err := os.WriteFile(path, c.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ReadNPY(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v, want one naming %s and containing %q", err, path, c.want)
			}
		})
	}
}

// TestWriteNPYMatchesNumpy: our encoding of numpy's array is byte for byte numpy's file.
func TestWriteNPYMatchesNumpy(t *testing.T) {
	want, err := os.ReadFile("testdata/npy/f4.npy")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := EncodeNPY(&b, mustNPY(t, "testdata/npy/f4.npy")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("encoding differs from numpy's:\n%q\n%q", b.Bytes()[:128], want[:128])
	}
	want1, _ := os.ReadFile("testdata/npy/f4_1d.npy")
	b.Reset()
	if err := EncodeNPY(&b, mustNPY(t, "testdata/npy/f4_1d.npy")); err != nil || !bytes.Equal(b.Bytes(), want1) {
		t.Errorf("1-D encoding differs from numpy's (%v)", err)
	}
}

func TestLatentsRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lat")
	a := compute.NewArray(3, 2, 1, 2, 2)
	for i := range a.Data {
		a.Data[i] = float32(i) * 0.25
	}
	in := &Latents{Array: a, Index: []IndexRow{
		{ID: "P001", Label: 0, Age: 63, Sex: "F", Source: "/x/P001/P001_roi.nii.gz"},
		{ID: "P,002", Label: 1, Age: math.NaN(), Sex: "M", Source: "b"},
		{ID: "P003", Label: -1, Age: 41.5, Sex: "", Source: ""},
	}}
	if err := WriteLatents(dir, in); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, filepath.Join(dir, LatentsFile)} {
		out, err := ReadLatents(path)
		if err != nil {
			t.Fatal(err)
		}
		sameArray(t, path, out.Array, a)
		for i, r := range out.Index {
			w := in.Index[i]
			if r.ID != w.ID || r.Label != w.Label || r.Sex != w.Sex || r.Source != w.Source ||
				!(r.Age == w.Age || math.IsNaN(r.Age) && math.IsNaN(w.Age)) {
				t.Errorf("%s row %d: %+v, want %+v", path, i, r, w)
			}
		}
	}
	// A bare .npy without an index: row numbers, unknown labels.
	bare := filepath.Join(t.TempDir(), "z.npy")
	if err := WriteNPY(bare, a); err != nil {
		t.Fatal(err)
	}
	out, err := ReadLatents(bare)
	if err != nil || len(out.Index) != 3 || out.Index[2].ID != "2" || out.Index[2].Label != -1 {
		t.Errorf("bare .npy: %v %+v", err, out)
	}
	// Errors: index length mismatch, missing index in a folder, not 5-D.
	if err := os.WriteFile(filepath.Join(dir, IndexFile), []byte("id,label\nA,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLatents(dir); err == nil || !strings.Contains(err.Error(), "lists 1 latents but") {
		t.Errorf("count mismatch: %v", err)
	}
	os.Remove(filepath.Join(dir, IndexFile))
	if _, err := ReadLatents(dir); err == nil || !strings.Contains(err.Error(), "a latents folder holds") {
		t.Errorf("missing index: %v", err)
	}
	if _, err := ReadLatents("testdata/npy/f4_1d.npy"); err == nil || !strings.Contains(err.Error(), "want 5-D") {
		t.Errorf("1-D latents: %v", err)
	}
	if err := WriteLatents(dir, &Latents{Array: a, Index: in.Index[:2]}); err == nil {
		t.Errorf("WriteLatents accepted 2 index rows for 3 latents")
	}
}

// TestNumpyReadsOurLatents has numpy load what WriteLatents wrote. Needs /usr/bin/python3
// with numpy (CI has it); skips otherwise.
func TestNumpyReadsOurLatents(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import numpy").Run(); err != nil {
		t.Skip("/usr/bin/python3 with numpy not available: skipping the numpy interop test")
	}
	dir := t.TempDir()
	a := compute.NewArray(2, 3, 1, 2, 5)
	for i := range a.Data {
		a.Data[i] = float32(math.Sin(float64(i))) * 1e3
	}
	idx := []IndexRow{{ID: "a", Label: 0, Age: 1}, {ID: "b", Label: 1, Age: 2}}
	if err := WriteLatents(dir, &Latents{Array: a, Index: idx}); err != nil {
		t.Fatal(err)
	}
	script := `import sys, numpy as np
x = np.load(sys.argv[1])
assert x.dtype == np.float32 and x.flags.c_contiguous, x.dtype
print(" ".join(str(d) for d in x.shape))
print(" ".join(str(int(v)) for v in x.view(np.uint32).ravel()))`
	out, err := exec.Command("/usr/bin/python3", "-c", script, filepath.Join(dir, LatentsFile)).Output()
	if err != nil {
		t.Fatalf("numpy could not load our .npy: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if lines[0] != "2 3 1 2 5" {
		t.Errorf("numpy sees shape %q", lines[0])
	}
	vals := strings.Fields(lines[1])
	for i, v := range vals {
		if want := fmt.Sprint(math.Float32bits(a.Data[i])); v != want {
			t.Fatalf("numpy element %d has bits %s, want %s", i, v, want)
		}
	}
}
