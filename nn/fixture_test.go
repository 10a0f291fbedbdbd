package nn

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/latentad/latentad/compute"
)

// fixture is one golden file written by testdata/gen_golden.py: the safetensors layout
// (8-byte header length, JSON header, raw little-endian data) with F16 and F32 tensors.
type fixture struct {
	name    string
	tensors map[string]compute.Array
	meta    map[string]string
}

func loadFixture(t *testing.T, name string) *fixture {
	t.Helper()
	path := filepath.Join("testdata", name)
	f, err := readFixture(path)
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 nn/testdata/gen_golden.py)", err)
	}
	return f
}

func readFixture(path string) (*fixture, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(raw) < 8 {
		return nil, fmt.Errorf("%s: too short for a header", path)
	}
	n := binary.LittleEndian.Uint64(raw)
	if n > uint64(len(raw)-8) {
		return nil, fmt.Errorf("%s: header length %d exceeds the file", path, n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		return nil, fmt.Errorf("%s: header: %v", path, err)
	}
	data := raw[8+n:]
	f := &fixture{name: filepath.Base(path), tensors: map[string]compute.Array{}, meta: map[string]string{}}
	for k, v := range header {
		if k == "__metadata__" {
			if err := json.Unmarshal(v, &f.meta); err != nil {
				return nil, fmt.Errorf("%s: metadata: %v", path, err)
			}
			continue
		}
		var e struct {
			Dtype   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("%s: entry %s: %v", path, k, err)
		}
		if e.Offsets[0] < 0 || e.Offsets[1] > len(data) || e.Offsets[0] > e.Offsets[1] {
			return nil, fmt.Errorf("%s: entry %s: offsets %v outside the data", path, k, e.Offsets)
		}
		b := data[e.Offsets[0]:e.Offsets[1]]
		a := compute.NewArray(e.Shape...)
		switch e.Dtype {
		case "F32":
			if len(b) != 4*len(a.Data) {
				return nil, fmt.Errorf("%s: entry %s: %d bytes for shape %v", path, k, len(b), e.Shape)
			}
			for i := range a.Data {
				a.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		case "F16":
			if len(b) != 2*len(a.Data) {
				return nil, fmt.Errorf("%s: entry %s: %d bytes for shape %v", path, k, len(b), e.Shape)
			}
			for i := range a.Data {
				a.Data[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
			}
		default:
			return nil, fmt.Errorf("%s: entry %s: dtype %s not supported", path, k, e.Dtype)
		}
		f.tensors[k] = a
	}
	return f, nil
}

// halfToFloat converts an IEEE binary16 to float32 (exact).
func halfToFloat(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * float32(math.Ldexp(frac, -24))
	case 0x1f:
		if frac != 0 {
			return float32(math.NaN())
		}
		return sign * float32(math.Inf(1))
	}
	return sign * float32(math.Ldexp(1024+frac, exp-25))
}

func (f *fixture) get(t *testing.T, name string) compute.Array {
	t.Helper()
	a, ok := f.tensors[name]
	if !ok {
		t.Fatalf("%s: no tensor %q", f.name, name)
	}
	return a
}

// prefixed returns the tensors under prefix+"/" keyed by the rest of the name.
func (f *fixture) prefixed(prefix string) map[string]compute.Array {
	out := map[string]compute.Array{}
	for k, a := range f.tensors {
		if len(k) > len(prefix) && k[:len(prefix)+1] == prefix+"/" {
			out[k[len(prefix)+1:]] = a
		}
	}
	return out
}

func (f *fixture) metaJSON(t *testing.T, key string, v any) {
	t.Helper()
	s, ok := f.meta[key]
	if !ok {
		t.Fatalf("%s: no metadata %q", f.name, key)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%s: metadata %q: %v", f.name, key, err)
	}
}

func upload(dev compute.Device, a compute.Array) *compute.Tensor {
	return compute.FromHost(dev, a.Data, a.Shape...)
}

// relErr is the measure every golden comparison uses: max|got-want| / max|want|, so a
// tolerance reads as "relative to the tensor's scale" and small entries do not dominate.
func relErr(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	if m == 0 {
		return d
	}
	return d / m
}

func TestHalfToFloat(t *testing.T) {
	cases := []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x3555, 0.333251953125}, {0x0001, 5.9604645e-08},
		{0x7bff, 65504}, {0x0000, 0}, {0x0400, 6.1035156e-05},
	}
	for _, c := range cases {
		if got := halfToFloat(c.h); got != c.want {
			t.Errorf("halfToFloat(%#04x) = %v, want %v", c.h, got, c.want)
		}
	}
}
