package checkpoint

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const python = "/usr/bin/python3"

// TestPyTorchInterop: latentad writes native checkpoints (converted from the .pth fixtures),
// then PyTorch reads them with testdata/interop.py and load_state_dict(strict=True) into the
// seed's modules, checks every value against what PyTorch originally saved, and steps a
// torch.optim.Adam restored from the optimiser file. Debian has no python3-safetensors, so the
// script's ~15-line reader (json + numpy → torch.from_numpy) stands in for
// safetensors.torch.load_file. Skipped when torch is not importable.
func TestPyTorchInterop(t *testing.T) {
	if err := exec.Command(python, "-c", "import torch, numpy").Run(); err != nil {
		t.Skipf("%s cannot import torch and numpy (%v): install python3-torch to run the PyTorch interop test", python, err)
	}
	exp := loadExpected(t)
	dir := t.TempDir()
	type pyCase struct {
		Path     string         `json:"path"`
		Arch     string         `json:"arch"`
		Kind     string         `json:"kind"`
		Config   map[string]int `json:"config"`
		Ref      string         `json:"ref"`
		Keys     []string       `json:"keys"`
		Shapes   [][]int        `json:"shapes"`
		OptimRef string         `json:"optim_ref,omitempty"`
	}
	var cases []pyCase
	for _, tc := range []struct{ src, arch string }{
		{"fm_zip.pth", "velocity"}, {"fm_legacy.pth", "velocity"}, {"ddpm_zip.pth", "velocity"}, {"ae_zip.pth", "ae"},
	} {
		c, err := LoadPTH(filepath.Join("testdata", tc.src))
		if err != nil {
			t.Fatal(err)
		}
		c.Order = nil // write in sorted order: PyTorch must not depend on the file's order
		path := filepath.Join(dir, strings.TrimSuffix(tc.src, ".pth")+".safetensors")
		if err := Save(path, c); err != nil {
			t.Fatal(err)
		}
		want := exp.Files[tc.src]
		r := exp.Refs[want.Ref]
		pc := pyCase{Path: path, Arch: tc.arch, Kind: c.Kind, Config: c.Config, Ref: r.File, Keys: r.Keys, Shapes: r.Shapes}
		if tc.arch == "ae" {
			pc.Config = map[string]int{"base": c.Config["base"]}
		}
		if want.Optim != nil {
			pc.OptimRef = exp.Refs[want.Optim.Ref].File
		}
		cases = append(cases, pc)
	}
	spec := filepath.Join(dir, "cases.json")
	b, _ := json.Marshal(cases)
	if err := os.WriteFile(spec, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/interop.py", spec).CombinedOutput()
	if err != nil {
		t.Fatalf("PyTorch could not use latentad's checkpoints: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, "ok 4") {
		t.Fatalf("interop.py printed %q, want \"ok 4\"", got)
	}
}
