package nifti

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const debianDir = "/usr/lib/python3/dist-packages/nibabel/tests/data"

// expect mirrors one entry of testdata/expect.json (written by gen_expect.py from nibabel).
type expect struct {
	Version    int           `json:"version"`
	Shape      []int         `json:"shape"`
	Datatype   string        `json:"datatype"`
	ByteOrder  string        `json:"byte_order"`
	Gzip       bool          `json:"gzip"`
	Slope      float64       `json:"slope"`
	Inter      float64       `json:"inter"`
	QformCode  int           `json:"qform_code"`
	SformCode  int           `json:"sform_code"`
	Zooms      []float64     `json:"zooms"`
	Affine     [4][4]float64 `json:"affine"`
	NanSum     float64       `json:"nansum"`
	NanMin     float64       `json:"nanmin"`
	NanMax     float64       `json:"nanmax"`
	NanCount   int           `json:"nan_count"`
	Samples    [][2]float64  `json:"samples"`
	NanSamples []int         `json:"nan_samples"`
}

func loadExpect(t testing.TB) map[string]map[string]expect {
	b, err := os.ReadFile("testdata/expect.json")
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]map[string]expect
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestReadMatchesNibabel(t *testing.T) {
	all := loadExpect(t)
	type tc struct {
		path string
		want expect
	}
	var cases []tc
	for name, w := range all["own"] {
		cases = append(cases, tc{filepath.Join("testdata", name), w})
	}
	for name, w := range all["debian"] {
		cases = append(cases, tc{filepath.Join(debianDir, name), w})
	}
	if len(all["own"]) < 5 || len(all["debian"]) < 5 {
		t.Fatalf("expect.json lists %d own and %d Debian files; regenerate it with gen_expect.py", len(all["own"]), len(all["debian"]))
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			if _, err := os.Stat(c.path); err != nil && strings.HasPrefix(c.path, debianDir) {
				t.Skipf("%s absent (install python3-nibabel to test against its files)", c.path)
			}
			im, err := ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			w := c.want
			order := "little"
			if im.ByteOrder == binary.BigEndian {
				order = "big"
			}
			if im.Version != w.Version || !equalInts(im.Dims, w.Shape) || im.Datatype.String() != w.Datatype || order != w.ByteOrder {
				t.Errorf("got version %d shape %v %v %s-endian, nibabel says %d %v %s %s",
					im.Version, im.Dims, im.Datatype, order, w.Version, w.Shape, w.Datatype, w.ByteOrder)
			}
			if s, i, _ := im.Scaling(); s != w.Slope || i != w.Inter {
				t.Errorf("scaling %g, %g; nibabel %g, %g", s, i, w.Slope, w.Inter)
			}
			if im.QformCode != w.QformCode || im.SformCode != w.SformCode {
				t.Errorf("qform/sform codes %d/%d, nibabel %d/%d", im.QformCode, im.SformCode, w.QformCode, w.SformCode)
			}
			if vs := im.VoxelSize(); !closeSlices(vs, w.Zooms, 0) {
				t.Errorf("voxel size %v, nibabel zooms %v", vs, w.Zooms)
			}
			// nibabel builds the qform in long double (fillpositive) before rounding to
			// float64, so allow a few ulps of the matrix's scale; sform affines are exact.
			for i := range 4 {
				for j := range 4 {
					if d := math.Abs(im.Affine[i][j] - w.Affine[i][j]); d > 1e-12*(1+math.Abs(w.Affine[i][j])) {
						t.Errorf("affine[%d][%d] = %.17g, nibabel %.17g", i, j, im.Affine[i][j], w.Affine[i][j])
					}
				}
			}
			var sum float64
			mn, mx, nans := math.Inf(1), math.Inf(-1), 0
			for _, v := range im.Data {
				if math.IsNaN(v) {
					nans++
					continue
				}
				sum += v
				mn, mx = math.Min(mn, v), math.Max(mx, v)
			}
			// Values are decoded with nibabel's own float64 operations, so min, max and each
			// sample must be identical; only the sum's order of addition differs (numpy
			// sums pairwise), worth a few ulps per addition at most.
			if mn != w.NanMin || mx != w.NanMax || nans != w.NanCount {
				t.Errorf("min %v max %v NaNs %d; nibabel %v %v %d", mn, mx, nans, w.NanMin, w.NanMax, w.NanCount)
			}
			if math.Abs(sum-w.NanSum) > 1e-12*float64(len(im.Data))*math.Max(math.Abs(mn), math.Abs(mx)) {
				t.Errorf("sum %.17g, nibabel %.17g", sum, w.NanSum)
			}
			for _, s := range w.Samples {
				if got := im.Data[int(s[0])]; got != s[1] {
					t.Errorf("voxel %d (Fortran order) = %.17g, nibabel %.17g", int(s[0]), got, s[1])
				}
			}
			for _, i := range w.NanSamples {
				if !math.IsNaN(im.Data[i]) {
					t.Errorf("voxel %d = %g, nibabel NaN", i, im.Data[i])
				}
			}
			if strings.HasSuffix(c.path, ".hdr") {
				return // a pair is read through ReadFile only
			}
			// The same through an in-memory stream and, for gzipped files, decompressed:
			// detection must come from the bytes, not the name.
			raw, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if w.Gzip != bytes.HasPrefix(raw, gzipMagic) {
				t.Fatalf("gzip flag disagrees with the file")
			}
			if w.Gzip {
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				var plain bytes.Buffer
				if _, err := plain.ReadFrom(zr); err != nil {
					t.Fatal(err)
				}
				raw = plain.Bytes()
			}
			im2, err := Read(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if !closeSlices(im2.Data, im.Data, 0) {
				t.Errorf("decompressed stream decodes differently")
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	all := loadExpect(t)
	im, err := ReadFile("testdata/be_float64.nii")
	if err != nil {
		t.Fatal(err)
	}
	// Fortran order: linear index x + X*(y + Y*(z + Z*t)).
	for _, s := range all["own"]["be_float64.nii"].Samples {
		i := int(s[0])
		d := im.Dims
		x, y, z, tt := i%d[0], i/d[0]%d[1], i/(d[0]*d[1])%d[2], i/(d[0]*d[1]*d[2])
		if got := im.At(x, y, z, tt); got != s[1] {
			t.Errorf("At(%d,%d,%d,%d) = %g, nibabel %g", x, y, z, tt, got, s[1])
		}
	}
}

func TestWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rot := rotAffine([3]float64{0.7, 0.9, 2.5}, 0.3, -0.2, 0.5, [3]float64{-90, 12.5, 40})
	flipped := rot
	for i := range 3 {
		flipped[i][2] = -flipped[i][2] // left-handed: qfac -1
	}
	cases := []struct {
		name         string
		dt           Datatype
		slope, inter float64
		affine       [4][4]float64
		dims         []int
		gen          func(i int) float64
	}{
		{"f32.nii.gz", Float32, 0, 0, rot, []int{5, 4, 3}, func(i int) float64 { return float64(float32(math.Sin(float64(i)) * 1000)) }},
		{"i16_scaled.nii.gz", Int16, 0.5, -1024, flipped, []int{3, 4, 5}, func(i int) float64 { return float64(i*37%4000)*0.5 - 1024 }},
		{"u8_4d.nii", Uint8, 0, 0, rot, []int{2, 3, 2, 2}, func(i int) float64 { return float64(i * 11 % 256) }},
		{"f64.nii", Float64, 0, 0, flipped, []int{4, 1, 3}, func(i int) float64 { return math.Exp(float64(i)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 1
			for _, d := range c.dims {
				n *= d
			}
			data := make([]float64, n)
			for i := range data {
				data[i] = c.gen(i)
			}
			im := NewImage(c.dims, c.dt, data, c.affine)
			im.SclSlope, im.SclInter = c.slope, c.inter
			path := filepath.Join(dir, c.name)
			if err := WriteFile(path, im); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(path)
			if strings.HasSuffix(c.name, ".gz") != bytes.HasPrefix(raw, gzipMagic) {
				t.Errorf("gzip by name: file starts % x", raw[:2])
			}
			got, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(got.Dims, c.dims) || got.Datatype != c.dt {
				t.Fatalf("read back %v %v, wrote %v %v", got.Dims, got.Datatype, c.dims, c.dt)
			}
			// Every value was chosen to be exactly representable in the stored type.
			if !closeSlices(got.Data, data, 0) {
				t.Errorf("data differ after round trip")
			}
			// sform is the affine rounded to float32; the qform holds it too (a rotation
			// and voxel sizes in float32), to float32 precision of the matrix's scale.
			sf, qf := got.SformAffine(), got.QformAffine()
			for i := range 4 {
				for j := range 4 {
					if sf[i][j] != float64(float32(c.affine[i][j])) {
						t.Errorf("sform[%d][%d] = %g, want %g", i, j, sf[i][j], c.affine[i][j])
					}
					if math.Abs(qf[i][j]-c.affine[i][j]) > 1e-6*(1+math.Abs(c.affine[i][j])) {
						t.Errorf("qform[%d][%d] = %g, want %g", i, j, qf[i][j], c.affine[i][j])
					}
				}
			}
		})
	}
}

func TestWriteRejects(t *testing.T) {
	eye := [4][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	cases := []struct {
		name string
		im   *Image
		want string
	}{
		{"int16 overflow", NewImage([]int{2}, Int16, []float64{1, 40000}, eye), "does not fit int16"},
		{"NaN in uint8", NewImage([]int{2}, Uint8, []float64{math.NaN(), 1}, eye), "does not fit uint8"},
		{"short data", NewImage([]int{2, 2}, Float32, []float64{1, 2, 3}, eye), "holds 3 values, want 4"},
		{"singular affine", NewImage([]int{1}, Float32, []float64{1}, [4][4]float64{}), "affine column 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, c.im)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/be_float64.nii")
	if err != nil {
		t.Fatal(err)
	}
	gz, err := os.ReadFile("testdata/int16_scaled.nii.gz")
	if err != nil {
		t.Fatal(err)
	}
	patch := func(b []byte, off int, v ...byte) []byte {
		c := append([]byte(nil), b...)
		copy(c[off:], v)
		return c
	}
	corrupt := append([]byte(nil), gz...)
	corrupt[len(corrupt)/2] ^= 0xff
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "reading the header"},
		{"not nifti", []byte("hello world, this is not a NIfTI file at all"), "not a NIfTI file"},
		{"header cut", good[:200], "header truncated after 200 of 348 bytes"},
		{"data cut", good[:len(good)-8], "truncated: header says [3 4 2 2] float64 voxels = 384 bytes"},
		{"gzip cut", gz[:len(gz)-30], "unexpected EOF"},
		{"gzip corrupt", corrupt, ""},
		{"bad magic", patch(good, 344, 'x'), "magic"},
		{"pair header", patch(good, 344, 'n', 'i', '1', 0), ".hdr/.img pair"},
		{"dim0 zero", patch(good, 40, 0, 0), "dim[0] = 0"},
		{"complex", patch(good, 70, 0, 32), "complex64 (code 32) is not supported"},
		{"negative dim", patch(good, 42, 0xff, 0xfe), "dim[1] = -2 is negative"},
		{"huge dims", patch(good, 42, 0x7f, 0xff, 0x7f, 0xff, 0x7f, 0xff, 0x7f, 0xff), "more than 2^40 voxels"},
		{"over the data limit", patch(good, 42, 0x7f, 0xff, 0x7f, 0xff, 0, 1, 0, 1), "more than the 4294967296-byte limit"},
		// 10^8 float64 voxels claimed: must fail on the real length, not allocate 800 MB.
		{"large dims", patch(good, 42, 0x03, 0xe8, 0x03, 0xe8, 0x00, 0x64, 0, 1), "truncated: header says [1000 1000 100 1]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	// ReadFile names the file.
	path := filepath.Join(t.TempDir(), "cut.nii")
	if err := os.WriteFile(path, good[:300], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadFile error %v does not name %s", err, path)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.nii")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// Pairs: a missing or short .img is named.
	hdr, err := os.ReadFile("testdata/pair_int16.hdr")
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile("testdata/pair_int16.img")
	if err != nil {
		t.Fatal(err)
	}
	pdir := t.TempDir()
	ph := filepath.Join(pdir, "p.hdr")
	if err := os.WriteFile(ph, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(ph); err == nil || !strings.Contains(err.Error(), "neither "+filepath.Join(pdir, "p")+".img nor") {
		t.Errorf("pair without .img: %v", err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "p.img"), img[:len(img)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(ph); err == nil || !strings.Contains(err.Error(), "p.img (data of "+ph+"): truncated") {
		t.Errorf("pair with a short .img: %v", err)
	}
}

// TestNibabelReadsOurFiles has nibabel read what WriteFile wrote. It needs /usr/bin/python3
// with nibabel (Debian python3-nibabel), as CI has; it skips otherwise.
func TestNibabelReadsOurFiles(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import nibabel").Run(); err != nil {
		t.Skip("/usr/bin/python3 with nibabel not available (apt-get install python3-nibabel): skipping the interop test")
	}
	dir := t.TempDir()
	aff := rotAffine([3]float64{0.8, 0.8, 2}, 0.1, 0.2, -0.3, [3]float64{10, -20, 30})
	for i := range 3 {
		aff[i][0] = -aff[i][0] // left-handed, as radiological CT often is
	}
	files := map[string]*Image{}
	n := 4 * 3 * 2
	f32, i16 := make([]float64, n), make([]float64, n)
	for i := range n {
		f32[i] = float64(float32(math.Cos(float64(i)) * 300))
		i16[i] = float64(i*113%3000 - 1024)
	}
	files["a_f32.nii.gz"] = NewImage([]int{4, 3, 2}, Float32, f32, aff)
	files["b_i16.nii.gz"] = NewImage([]int{4, 3, 2}, Int16, i16, aff)
	// Stored as HU+1024 with scl_inter -1024, as CT scanners often write.
	files["b_i16.nii.gz"].SclInter = -1024
	files["b_i16.nii.gz"].SclSlope = 1
	for name, im := range files {
		if err := WriteFile(filepath.Join(dir, name), im); err != nil {
			t.Fatal(err)
		}
	}
	script := `
import json, sys, glob, os, nibabel as nib
out = {}
for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.nii.gz"))):
    img = nib.load(p)
    out[os.path.basename(p)] = {"shape": list(img.shape), "dtype": str(img.get_data_dtype()),
        "affine": img.affine.tolist(), "qform": img.header.get_qform().tolist(),
        "data": img.get_fdata().ravel(order="F").tolist()}
print(json.dumps(out))
`
	outb, err := exec.Command("/usr/bin/python3", "-c", script, dir).Output()
	if err != nil {
		t.Fatalf("nibabel failed to read our files: %v", err)
	}
	var got map[string]struct {
		Shape  []int
		Dtype  string
		Affine [4][4]float64
		Qform  [4][4]float64
		Data   []float64
	}
	if err := json.Unmarshal(outb, &got); err != nil {
		t.Fatal(err)
	}
	for name, im := range files {
		g, ok := got[name]
		if !ok {
			t.Fatalf("nibabel did not report %s", name)
		}
		if !equalInts(g.Shape, im.Dims) || g.Dtype != im.Datatype.String() {
			t.Errorf("%s: nibabel sees %v %s, wrote %v %v", name, g.Shape, g.Dtype, im.Dims, im.Datatype)
		}
		if !closeSlices(g.Data, im.Data, 0) {
			t.Errorf("%s: nibabel reads other values", name)
		}
		for i := range 4 {
			for j := range 4 {
				if g.Affine[i][j] != float64(float32(aff[i][j])) {
					t.Errorf("%s: nibabel affine[%d][%d] = %g, wrote %g", name, i, j, g.Affine[i][j], aff[i][j])
				}
				// qform: float32 quaternion and voxel sizes.
				if math.Abs(g.Qform[i][j]-aff[i][j]) > 1e-6*(1+math.Abs(aff[i][j])) {
					t.Errorf("%s: nibabel qform[%d][%d] = %g, wrote %g", name, i, j, g.Qform[i][j], aff[i][j])
				}
			}
		}
	}
}

func rotAffine(zoom [3]float64, ax, ay, az float64, off [3]float64) [4][4]float64 {
	rx := [3][3]float64{{1, 0, 0}, {0, math.Cos(ax), -math.Sin(ax)}, {0, math.Sin(ax), math.Cos(ax)}}
	ry := [3][3]float64{{math.Cos(ay), 0, math.Sin(ay)}, {0, 1, 0}, {-math.Sin(ay), 0, math.Cos(ay)}}
	rz := [3][3]float64{{math.Cos(az), -math.Sin(az), 0}, {math.Sin(az), math.Cos(az), 0}, {0, 0, 1}}
	mul := func(a, b [3][3]float64) (c [3][3]float64) {
		for i := range 3 {
			for j := range 3 {
				for k := range 3 {
					c[i][j] += a[i][k] * b[k][j]
				}
			}
		}
		return
	}
	r := mul(mul(rx, ry), rz)
	var a [4][4]float64
	for i := range 3 {
		for j := range 3 {
			a[i][j] = r[i][j] * zoom[j]
		}
		a[i][3] = off[i]
	}
	a[3][3] = 1
	return a
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// closeSlices compares with a relative tolerance; tol 0 means bit-equal (NaN equals NaN).
func closeSlices(a, b []float64, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.IsNaN(a[i]) && math.IsNaN(b[i]) {
			continue
		}
		if math.Abs(a[i]-b[i]) > tol*math.Abs(b[i]) {
			return false
		}
	}
	return true
}
