// Package pyfix runs a fixture generator under Debian's PyTorch (/usr/bin/python3) from a
// test, for fixtures too large to commit (a seed-size checkpoint is 5.5 MB). Without torch
// the test is skipped with a message saying what to install; CI installs it.
package pyfix

import (
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

// Run runs the repository script (a path from the module root) with args and returns a
// fresh output directory that is passed as the first argument.
func Run(t testing.TB, script string, args ...string) string {
	t.Helper()
	Require(t)
	out := t.TempDir()
	cmd := exec.Command(Python, append([]string{filepath.Join(Root(), script), out}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, b)
	}
	return out
}

// Root is the module's root folder.
func Root() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..")
}
