package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nativeBytes returns the bytes of a small native checkpoint (model file only).
func nativeBytes(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Save(path, sample("fm", false, 0.5)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// safetensorsWith builds a safetensors file from a header and a data section.
func safetensorsWith(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadInputs(t *testing.T) {
	native := nativeBytes(t)
	hlen := binary.LittleEndian.Uint64(native)
	zipNoPickle := func() []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create("archive/readme.txt")
		w.Write([]byte("hello"))
		zw.Close()
		return b.Bytes()
	}()
	strided := fixture(t, "strided_legacy.pth")
	meta99 := strings.Replace(string(native), `\"format_version\":1`, `\"format_version\":9`, 1)
	if meta99 == string(native) {
		t.Fatal("format_version not found in the native file's metadata")
	}
	cases := []struct {
		name string
		data []byte // nil: path is a directory
		want string
	}{
		{"empty", []byte{}, "empty file, not a checkpoint"},
		{"text", []byte("id,label,score\n1,0,0.5\n"), `not a PyTorch or latentad checkpoint (starts with "id,label,score\n1"`},
		{"short binary", []byte{1, 2, 3}, `not a PyTorch or latentad checkpoint (starts with "\x01\x02\x03")`},
		{"plain pickle", []byte("\x80\x02}q\x00."), "a Python pickle but not a PyTorch checkpoint"},
		{"truncated zip", fixture(t, "fm_zip.pth")[:40000], "truncated or corrupt PyTorch zip checkpoint"},
		{"zip without data.pkl", zipNoPickle, "zip file without data.pkl"},
		{"legacy cut in its pickle", fixture(t, "fm_legacy.pth")[:3000], "legacy PyTorch file, object: pickle truncated"},
		{"legacy cut in its data", fixture(t, "fm_legacy.pth")[:60000], "truncated legacy PyTorch file: storage"},
		{"legacy cut before a storage", strided[:len(strided)-43], "truncated legacy PyTorch file: storage"},
		{"safetensors cut in its data", native[:len(native)-10],
			fmt.Sprintf("truncated: header says %d bytes, file has %d", len(native), len(native)-10)},
		{"safetensors cut in its header", native[:60], fmt.Sprintf("truncated: header says %d bytes, file has 60", 8+hlen)},
		{"safetensors header garbage", safetensorsWith("{garbage}", nil), "its JSON does not parse"},
		{"safetensors huge header length", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, '{', '}'), "its length field says"},
		{"safetensors wrong size", safetensorsWith(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), `tensor "w": data_offsets [0, 8] hold 8 bytes`},
		{"safetensors offsets reversed", safetensorsWith(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 8)), "begin after end"},
		{"safetensors int dtype", safetensorsWith(`{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)), "dtype I64"},
		{"safetensors negative dim", safetensorsWith(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, nil), "negative dimension"},
		{"safetensors huge shape", safetensorsWith(`{"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}}`, nil), `tensor "w"`},
		{"safetensors bad metadata", safetensorsWith(`{"__metadata__":{"a":1}}`, nil), "__metadata__ must map strings to strings"},
		{"safetensors trailing bytes", safetensorsWith(`{}xyz`, nil), "unexpected bytes after its JSON"},
		{"newer format version", []byte(meta99), "format_version 9"},
		{"pickled module", fixture(t, "bad_module.pth"), "pickled torch.nn.modules.linear.Linear object, not a state_dict"},
		{"pickled list", fixture(t, "bad_list.pth"), "holds a list, not a dict"},
		{"int tensor", fixture(t, "bad_int_tensor.pth"), `state_dict entry "w": a LongStorage tensor`},
		{"non-tensor entry", fixture(t, "bad_entry.pth"), `state_dict entry "n" is 3, not a tensor`},
		{"directory", nil, "is a directory, not a checkpoint file"},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("case%d.bin", i))
			if tc.data == nil {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded (kind %q, %d tensors); want an error containing %q", c.Kind, len(c.Model), tc.want)
			}
			if !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error\n  %v\nwant it to start with the path and contain\n  %s", err, tc.want)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "nonexistent.pth")); err == nil || !strings.Contains(err.Error(), "nonexistent.pth: no such checkpoint file") {
		t.Errorf("missing file: %v", err)
	}
}

// The seed corpus runs in every go test; `go test -fuzz=FuzzDecodeSafetensors ./checkpoint`
// explores further. Decoding may fail but must not panic, and what it returns must be sound.
func FuzzDecodeSafetensors(f *testing.F) {
	native := nativeBytes(f)
	f.Add(native)
	f.Add(native[:len(native)/2])
	dt, err := os.ReadFile("testdata/dtypes.safetensors")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(dt)
	f.Add(safetensorsWith(`{"w":{"dtype":"F16","shape":[2,1],"data_offsets":[0,4]},"__metadata__":{"latentad":"{\"format_version\":1,\"loss\":\"NaN\",\"args\":{\"a\":[1,2.5]},\"optim\":{\"save_id\":\"x\"}}"}}`, make([]byte, 4)))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeSafetensors(data)
		if err == nil {
			for _, x := range st.tensors {
				if err := x.array.Check(); err != nil {
					t.Fatalf("tensor %q: %v", x.name, err)
				}
			}
		}
		if looksSafetensors(data) {
			decodeNative(filepath.Join(os.DevNull, "f.safetensors"), data) // no optimiser file there
		}
	})
}

// The PyTorch reader gets the same treatment on small .pth files of both formats.
func FuzzDecodePTH(f *testing.F) {
	for _, name := range []string{"strided_zip.pth", "strided_legacy.pth", "bad_entry.pth", "bad_list.pth"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.\x80\x02}.\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01h\x01X\x01\x00\x00\x00bC\x01xu.\x80\x02]."))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodePTH(data)
		if err == nil {
			for k, a := range c.Model {
				if err := a.Check(); err != nil {
					t.Fatalf("tensor %q: %v", k, err)
				}
			}
		}
	})
}
