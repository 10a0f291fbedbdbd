// Package pyfix runs a fixture generator under Debian's PyTorch (/usr/bin/python3) from a
// test, for fixtures too large to commit (a seed-size checkpoint is 5.5 MB). Without torch
// the test is skipped with a message saying what to install; CI installs it.
package pyfix

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Python is the interpreter with Debian's python3-torch (the python3 on PATH may not be).
const Python = "/usr/bin/python3"

var (
	once  sync.Once
	ready bool
)

// Require skips t unless /usr/bin/python3 can import torch and the given modules.
func Require(t testing.TB, modules ...string) {
	t.Helper()
	once.Do(func() { ready = exec.Command(Python, "-c", "import torch, numpy").Run() == nil })
	if !ready {
		t.Skip("needs Debian's python3-torch (apt-get install python3-torch) for /usr/bin/python3")
	}
	for _, m := range modules {
		if exec.Command(Python, "-c", "import "+m).Run() != nil {
			t.Skipf("needs the Python module %s for /usr/bin/python3", m)
		}
	}
}

// Run runs the repository script (a path from the module root) and returns the directory it
// wrote, which is passed as its first argument and must be treated as read-only. Outputs are
// kept under the system's temporary folder, keyed by the script, the shared reference
// pyref/seed.py and the arguments, so packages that need the same fixture (flow and ddpm
// share one) generate it once.
func Run(t testing.TB, script string, args ...string) string {
	t.Helper()
	Require(t)
	h := sha256.New()
	for _, f := range []string{script, "pyref/seed.py"} {
		b, err := os.ReadFile(filepath.Join(Root(), f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	fmt.Fprintf(h, "%q", args)
	cache := filepath.Join(os.TempDir(), "latentad-pyfix", hex.EncodeToString(h.Sum(nil))[:20])
	if _, err := os.Stat(cache); err == nil {
		return cache
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(cache), ".gen-*")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python, append([]string{filepath.Join(Root(), script), tmp}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("%s: %v\n%s", script, err, b)
	}
	// Appear whole or not at all; when another test process got there first, use its copy.
	if err := os.Rename(tmp, cache); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(cache); serr != nil {
			t.Fatal(err)
		}
	}
	return cache
}

// Root is the module's root folder.
func Root() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..")
}
