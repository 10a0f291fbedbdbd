package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/latentad/latentad/compute"
)

// The fixtures come from testdata/gen_fixtures.py (PyTorch 1.13, numpy); expected.json and the
// .f32 files hold what PyTorch saved, written by numpy independently of torch.save.

type refJSON struct {
	Keys   []string `json:"keys"`
	Shapes [][]int  `json:"shapes"`
	File   string   `json:"file"`
}

type fileJSON struct {
	Ref      string          `json:"ref"`
	Kind     string          `json:"kind"`
	Config   map[string]int  `json:"config"`
	Epoch    int             `json:"epoch"`
	Loss     float64         `json:"loss"`
	Args     json.RawMessage `json:"args"`
	Schedule *struct {
		Timesteps int    `json:"timesteps"`
		Type      string `json:"type"`
	} `json:"schedule"`
	Optim *struct {
		Step int     `json:"step"`
		Ref  string  `json:"ref"`
		LR   float64 `json:"lr"`
	} `json:"optim"`
}

type expectedJSON struct {
	Refs  map[string]refJSON  `json:"refs"`
	Files map[string]fileJSON `json:"files"`
}

func loadExpected(t *testing.T) expectedJSON {
	t.Helper()
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e expectedJSON
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// refArrays reads a reference: its keys in order and the arrays.
func refArrays(t *testing.T, r refJSON) ([]string, map[string]compute.Array) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", r.File))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]compute.Array{}
	off := 0
	for i, k := range r.Keys {
		a := compute.NewArray(r.Shapes[i]...)
		for j := range a.Data {
			a.Data[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*(off+j):]))
		}
		off += len(a.Data)
		out[k] = a
	}
	if 4*off != len(b) {
		t.Fatalf("%s: %d bytes, the keys need %d", r.File, len(b), 4*off)
	}
	return r.Keys, out
}

// pyArgs decodes expected args as Python wrote them: ints without a decimal point stay ints.
func pyArgs(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return decodeArgs(m).(map[string]any)
}

// sameArrays requires bit-identical values: loading only moves float32s (or converts
// float64/float16 exactly as numpy's astype(float32) does), so no tolerance applies.
func sameArrays(t *testing.T, what string, got, want map[string]compute.Array) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing %q", what, k)
			continue
		}
		if !slices.Equal(g.Shape, w.Shape) {
			t.Errorf("%s %q: shape %v, want %v", what, k, g.Shape, w.Shape)
			continue
		}
		for i := range w.Data {
			if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
				t.Errorf("%s %q[%d] = %v, want %v", what, k, i, g.Data[i], w.Data[i])
				break
			}
		}
	}
}

func TestLoadPTHFixtures(t *testing.T) {
	exp := loadExpected(t)
	if len(exp.Files) < 10 {
		t.Fatalf("expected.json lists %d files", len(exp.Files))
	}
	for name, want := range exp.Files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			for _, load := range []func(string) (*Checkpoint, error){Load, LoadPTH} {
				c, err := load(path)
				if err != nil {
					t.Fatal(err)
				}
				if c.Path != path {
					t.Errorf("Path %q", c.Path)
				}
				keys, arrays := refArrays(t, exp.Refs[want.Ref])
				if !slices.Equal(c.Order, keys) {
					t.Errorf("Order %v, want %v", c.Order, keys)
				}
				sameArrays(t, "model", c.Model, arrays)
				if c.Kind != want.Kind {
					t.Errorf("Kind %q, want %q", c.Kind, want.Kind)
				}
				if !reflect.DeepEqual(c.Config, want.Config) {
					t.Errorf("Config %v, want %v", c.Config, want.Config)
				}
				if c.Epoch != want.Epoch || c.Loss != want.Loss {
					t.Errorf("epoch %d loss %v, want %d %v", c.Epoch, c.Loss, want.Epoch, want.Loss)
				}
				if wa := pyArgs(t, want.Args); !reflect.DeepEqual(c.Args, wa) {
					t.Errorf("Args\n%#v\nwant\n%#v", c.Args, wa)
				}
				switch {
				case want.Schedule == nil && c.Schedule != nil:
					t.Errorf("Schedule %+v, want none", c.Schedule)
				case want.Schedule != nil && (c.Schedule == nil || *c.Schedule != Schedule{want.Schedule.Timesteps, want.Schedule.Type}):
					t.Errorf("Schedule %+v, want %+v", c.Schedule, want.Schedule)
				}
				if want.Optim == nil {
					if c.Optim != nil {
						t.Errorf("Optim set, want none")
					}
					continue
				}
				if c.Optim == nil {
					t.Fatalf("no Optim; notes %q", c.Notes)
				}
				if c.Optim.Step != want.Optim.Step || c.Optim.LR != want.Optim.LR ||
					c.Optim.Betas != [2]float64{0.9, 0.999} || c.Optim.Eps != 1e-8 {
					t.Errorf("Optim step %d lr %v betas %v eps %v, want step %d lr %v (Adam defaults)",
						c.Optim.Step, c.Optim.LR, c.Optim.Betas, c.Optim.Eps, want.Optim.Step, want.Optim.LR)
				}
				_, om := refArrays(t, exp.Refs[want.Optim.Ref])
				ea, esq := map[string]compute.Array{}, map[string]compute.Array{}
				for k, a := range om {
					if n, ok := strings.CutPrefix(k, "exp_avg_sq."); ok {
						esq[n] = a
					} else if n, ok := strings.CutPrefix(k, "exp_avg."); ok {
						ea[n] = a
					}
				}
				sameArrays(t, "exp_avg", c.Optim.ExpAvg, ea)
				sameArrays(t, "exp_avg_sq", c.Optim.ExpAvgSq, esq)
			}
		})
	}
}

// The strided fixtures hold float64 and float16 tensors: Notes must say they were converted.
func TestConversionNotes(t *testing.T) {
	for _, name := range []string{"strided_zip.pth", "strided_legacy.pth", "dtypes.safetensors"} {
		c, err := Load(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		notes := strings.Join(c.Notes, "\n")
		for _, want := range []string{"F64 tensor(s) to float32", "F16 tensor(s) to float32"} {
			if !strings.Contains(notes, want) {
				t.Errorf("%s: notes %q lack %q", name, notes, want)
			}
		}
	}
}

// A plain safetensors file written by Python (json + numpy) in four dtypes.
func TestLoadPlainSafetensors(t *testing.T) {
	exp := loadExpected(t)
	c, err := Load("testdata/dtypes.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	keys, arrays := refArrays(t, exp.Refs["dtypes"])
	sameArrays(t, "dtypes", c.Model, arrays)
	if !slices.Equal(c.Order, keys) {
		t.Errorf("Order %v, want %v", c.Order, keys)
	}
	if c.Kind != "" || c.Optim != nil {
		t.Errorf("kind %q optim %v for a file without metadata", c.Kind, c.Optim)
	}
	if _, err := LoadPTH("testdata/dtypes.safetensors"); err == nil || !strings.Contains(err.Error(), "not a PyTorch") {
		t.Errorf("LoadPTH of a safetensors file: %v", err)
	}
}

func TestHalfToFloat(t *testing.T) {
	cases := []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.9604645e-08},
		{0x03ff, 6.097555e-05}, {0x0400, 6.1035156e-05}, {0x3555, 0.33325195}, {0x8001, -5.9604645e-08},
	}
	for _, c := range cases {
		if got := halfToFloat(c.h); got != c.want {
			t.Errorf("halfToFloat(%#04x) = %v, want %v", c.h, got, c.want)
		}
	}
	if !math.IsInf(float64(halfToFloat(0x7c00)), 1) || !math.IsInf(float64(halfToFloat(0xfc00)), -1) || !math.IsNaN(float64(halfToFloat(0x7e00))) {
		t.Error("halfToFloat: Inf/NaN")
	}
}

// sample builds a small checkpoint with every field set.
func sample(kind string, withOptim bool, loss float64) *Checkpoint {
	c := &Checkpoint{
		Kind:   kind,
		Config: map[string]int{"in_channels": 2, "base_channels": 8, "time_dim": 8, "num_res_blocks": 1},
		Epoch:  5,
		Loss:   loss,
		Args: map[string]any{"lr": 1.0, "seed": 42, "name": "run", "shape": []any{128, 64}, "none": nil,
			"flag": true, "tiny": 1e-300, "nested": map[string]any{"x": 0.5}},
		Model: map[string]compute.Array{
			"b.weight":          {Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, float32(math.Inf(1)), 0, -0}},
			"a.bias":            {Shape: []int{3}, Data: []float32{0.1, 0.2, 0.3}},
			"scalar":            {Shape: []int{}, Data: []float32{7}},
			"empty":             {Shape: []int{0, 4}, Data: []float32{}},
			"unicode.ключ.name": {Shape: []int{1}, Data: []float32{float32(math.NaN())}},
		},
		Extra: map[string]string{"rng": "abc123", "note": "x"},
		Order: []string{"b.weight", "a.bias", "scalar", "empty", "unicode.ключ.name"},
	}
	if kind == "ddpm" {
		c.Schedule = &Schedule{Timesteps: 1000, Type: "cosine"}
	}
	if withOptim {
		c.Optim = &OptimState{Step: 17, ExpAvg: map[string]compute.Array{}, ExpAvgSq: map[string]compute.Array{},
			LR: 1e-4, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}
		for k, a := range c.Model {
			e, s := compute.NewArray(a.Shape...), compute.NewArray(a.Shape...)
			for i := range e.Data {
				e.Data[i], s.Data[i] = float32(i)+0.25, float32(i*i)+0.5
			}
			c.Optim.ExpAvg[k], c.Optim.ExpAvgSq[k] = e, s
		}
	}
	return c
}

// equalCheckpoints compares everything Save writes, NaN-aware and bit-exact.
func equalCheckpoints(t *testing.T, got, want *Checkpoint) {
	t.Helper()
	if got.Kind != want.Kind || got.Epoch != want.Epoch ||
		math.Float64bits(got.Loss) != math.Float64bits(want.Loss) && !(math.IsNaN(got.Loss) && math.IsNaN(want.Loss)) {
		t.Errorf("kind/epoch/loss %q %d %v, want %q %d %v", got.Kind, got.Epoch, got.Loss, want.Kind, want.Epoch, want.Loss)
	}
	if !reflect.DeepEqual(got.Config, want.Config) || !reflect.DeepEqual(got.Schedule, want.Schedule) ||
		!reflect.DeepEqual(got.Extra, want.Extra) {
		t.Errorf("config/schedule/extra %v %+v %v, want %v %+v %v", got.Config, got.Schedule, got.Extra, want.Config, want.Schedule, want.Extra)
	}
	if !reflect.DeepEqual(got.Args, want.Args) {
		t.Errorf("Args\n%#v\nwant\n%#v", got.Args, want.Args)
	}
	sameArrays(t, "model", got.Model, want.Model)
	if (got.Optim == nil) != (want.Optim == nil) {
		t.Fatalf("Optim %v, want %v (notes %q)", got.Optim != nil, want.Optim != nil, got.Notes)
	}
	if want.Optim != nil {
		g, w := *got.Optim, *want.Optim
		if g.Step != w.Step || g.LR != w.LR || g.Betas != w.Betas || g.Eps != w.Eps || g.WeightDecay != w.WeightDecay {
			t.Errorf("optim %+v, want %+v", g, w)
		}
		sameArrays(t, "exp_avg", g.ExpAvg, w.ExpAvg)
		sameArrays(t, "exp_avg_sq", g.ExpAvgSq, w.ExpAvgSq)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		c    *Checkpoint
	}{
		{"fm with optim", sample("fm", true, 0.123456789012345)},
		{"ddpm no optim", sample("ddpm", false, 1e-30)},
		{"nan loss", sample("ae", false, math.NaN())},
		{"inf loss", sample("", true, math.Inf(-1))},
		{"no args", func() *Checkpoint { c := sample("fm", false, 0); c.Args, c.Extra, c.Order = nil, nil, nil; return c }()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".safetensors")
			if err := Save(path, tc.c); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			equalCheckpoints(t, got, tc.c)
			if tc.c.Order != nil && !slices.Equal(got.Order, tc.c.Order) {
				t.Errorf("Order %v, want %v", got.Order, tc.c.Order)
			}
			if _, err := os.Stat(OptimPath(path)); (err == nil) != (tc.c.Optim != nil) {
				t.Errorf("optimiser file present: %v, want %v", err == nil, tc.c.Optim != nil)
			}
		})
	}
}

// A .pth converted to the native format keeps everything, and the args' float/int types.
func TestConvertPTH(t *testing.T) {
	for _, name := range []string{"fm_zip.pth", "fm_legacy.pth", "ns_numpy.pth", "ddpm_args_legacy.pth", "ae_zip.pth"} {
		c, err := LoadPTH(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "m.safetensors")
		if err := Save(path, c); err != nil {
			t.Fatal(err)
		}
		got, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		equalCheckpoints(t, got, c)
		if !slices.Equal(got.Order, c.Order) {
			t.Errorf("%s: Order %v, want %v", name, got.Order, c.Order)
		}
	}
}

// Saving without optimiser state removes the optimiser file of an earlier save, so it cannot be
// mistaken for this one's; a model whose optimiser file is gone still loads.
func TestOptimFileLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "best_model.safetensors")
	if OptimPath(path) != filepath.Join(dir, "best_model.optim.safetensors") || OptimPath("x/model") != "x/model.optim.safetensors" {
		t.Fatalf("OptimPath: %s", OptimPath(path))
	}
	if err := Save(path, sample("fm", true, 1)); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, sample("fm", false, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(OptimPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale optimiser file left: %v", err)
	}
	if err := Save(path, sample("fm", true, 3)); err != nil {
		t.Fatal(err)
	}
	os.Remove(OptimPath(path))
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Optim != nil || !strings.Contains(strings.Join(c.Notes, " "), "optimiser state not loaded") {
		t.Errorf("missing optimiser file: Optim %v, notes %q", c.Optim, c.Notes)
	}
}

// failAfter lets n bytes through, then fails, as a full disk or a crash would.
type failAfter struct {
	w io.Writer
	n int
}

var errDiskFull = errors.New("simulated write failure")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n, _ := f.w.Write(p[:f.n])
		f.n = 0
		return n, errDiskFull
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestAtomicSave(t *testing.T) {
	old := sample("fm", true, 1.5)
	newer := sample("ddpm", true, 2.5)
	for i := range newer.Model["a.bias"].Data {
		newer.Model["a.bias"].Data[i] += 10
	}
	// Calls to the writer: the optimiser file first, then the model file. Fail in each, early
	// and late, and in the model file after the optimiser file was fully written.
	cases := []struct {
		name        string
		failingCall int // 1: optimiser file, 2: model file
		after       int
	}{
		{"optim header", 1, 3},
		{"optim data", 1, 300},
		{"model header", 2, 0},
		{"model data", 2, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.safetensors")
			if err := Save(path, old); err != nil {
				t.Fatal(err)
			}
			calls := 0
			wrapWriter = func(w io.Writer) io.Writer {
				calls++
				if calls == tc.failingCall {
					return &failAfter{w: w, n: tc.after}
				}
				return w
			}
			err := Save(path, newer)
			wrapWriter = nil
			if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("Save error %v, want the simulated failure naming the file", err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			equalCheckpoints(t, got, old) // including the old optimiser state
			ents, _ := os.ReadDir(dir)
			if len(ents) != 2 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("directory holds %v; want only the model and its optimiser file", names)
			}
		})
	}
}

// A model paired with another save's optimiser file (a crash between the two renames) loads
// without the optimiser state, and says why.
func TestMismatchedOptimFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	if err := Save(a, sample("fm", true, 1)); err != nil {
		t.Fatal(err)
	}
	if err := Save(b, sample("fm", true, 2)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(OptimPath(b), OptimPath(a)); err != nil {
		t.Fatal(err)
	}
	c, err := Load(a)
	if err != nil {
		t.Fatal(err)
	}
	if c.Optim != nil || !strings.Contains(strings.Join(c.Notes, " "), "belongs to another save") {
		t.Errorf("Optim %v, notes %q", c.Optim, c.Notes)
	}
}

func TestSaveRejects(t *testing.T) {
	dir := t.TempDir()
	bad := func(f func(c *Checkpoint)) *Checkpoint { c := sample("fm", true, 0); f(c); return c }
	cases := []struct {
		name string
		path string
		c    *Checkpoint
		want string
	}{
		{"nil", "x.safetensors", nil, "no checkpoint"},
		{"directory", ".", sample("fm", false, 0), "is a directory"},
		{"kind", "k.safetensors", bad(func(c *Checkpoint) { c.Kind = "gan" }), `kind "gan"`},
		{"schedule", "s.safetensors", bad(func(c *Checkpoint) { c.Schedule = &Schedule{10, "quadratic"} }), "quadratic"},
		{"array", "a.safetensors", bad(func(c *Checkpoint) { c.Model["a.bias"] = compute.Array{Shape: []int{4}, Data: []float32{1}} }), `"a.bias"`},
		{"optim shape", "o.safetensors", bad(func(c *Checkpoint) { c.Optim.ExpAvg["a.bias"] = compute.NewArray(2) }), "exp_avg of \"a.bias\""},
		{"optim key", "p.safetensors", bad(func(c *Checkpoint) { delete(c.Optim.ExpAvgSq, "scalar") }), "exp_avg_sq has 4 tensors"},
		{"arg type", "t.safetensors", bad(func(c *Checkpoint) { c.Args["ch"] = make(chan int) }), "args.ch"},
		{"reserved name", "r.safetensors", bad(func(c *Checkpoint) { c.Model["__metadata__"] = compute.NewArray(1); c.Optim = nil }), "__metadata__"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.path)
			err := Save(path, tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Save: %v; want an error naming %s and containing %q", err, path, tc.want)
			}
		})
	}
}

func TestCheckShapes(t *testing.T) {
	c := sample("fm", false, 0)
	c.Path = "m.safetensors"
	want := map[string][]int{"b.weight": {2, 3}, "a.bias": {3}, "scalar": {}, "empty": {0, 4}, "unicode.ключ.name": {1}}
	if err := c.CheckShapes(want); err != nil {
		t.Fatal(err)
	}
	want["missing.w"] = []int{1}
	want["a.bias"] = []int{4}
	delete(want, "scalar")
	err := c.CheckShapes(want)
	for _, s := range []string{"m.safetensors", "missing keys: missing.w", "unexpected keys: scalar", "a.bias is [3], the model wants [4]"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("CheckShapes: %v; want it to contain %q", err, s)
		}
	}
}

// Optimiser states that do not fit latentad's Adam leave Optim nil and say why; the weights load.
func TestOptimizerNotUsed(t *testing.T) {
	cases := []struct{ file, note string }{
		{"optim_partial.pth", "optimizer state not used: it has 1 parameters, the model 2 tensors"},
		{"optim_amsgrad.pth", "optimizer state not used: it is AMSGrad state"},
	}
	for _, tc := range cases {
		c, err := LoadPTH(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if c.Optim != nil || len(c.Model) != 2 || !strings.Contains(strings.Join(c.Notes, "\n"), tc.note) {
			t.Errorf("%s: Optim %v, %d tensors, notes %q; want no Optim and a note %q", tc.file, c.Optim, len(c.Model), c.Notes, tc.note)
		}
	}
}
