package main

import (
	"bytes"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestCheck runs the checker on two small modules that differ only in a darwin-only file:
// it must report the type error with its file and line in one and pass the other, while a
// plain Linux build of the bad one succeeds (so only the darwin check can catch it).
func TestCheck(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	if runtime.GOOS == "darwin" {
		// On a Mac the bad module's darwin file is part of the native build; skip that check.
	} else if out, err := exec.Command("go", "-C", "testdata/bad", "vet", "./...").CombinedOutput(); err != nil {
		t.Fatalf("the bad module should build on this (non-darwin) machine: %v\n%s", err, out)
	}
	tests := []struct {
		dir     string
		errors  int
		message string
	}{
		{"testdata/bad", 1, "lib_darwin.go:8:"},
		{"testdata/good", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			var out bytes.Buffer
			st, err := check(tc.dir, []string{"./..."}, true, &out)
			if err != nil {
				t.Fatal(err)
			}
			if st.errors != tc.errors || !strings.Contains(out.String(), tc.message) {
				t.Errorf("got %d errors, want %d mentioning %q:\n%s", st.errors, tc.errors, tc.message, out.String())
			}
			if st.own != 2 || st.packages < 10 {
				t.Errorf("checked %d packages, %d of the module: want the standard library's too, the package and its test variant", st.packages, st.own)
			}
		})
	}
}
