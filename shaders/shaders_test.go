package shaders

import (
	"regexp"
	"strings"
	"testing"
)

// stripComments removes // and /* */ comments so the lints below see only code.
func stripComments(s string) string {
	s = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(s, "")
	return regexp.MustCompile(`//[^\n]*`).ReplaceAllString(s, "")
}

func TestFilesAreSelfContained(t *testing.T) {
	want := []string{"activation.metal", "adam.metal", "conv3d.metal", "elementwise.metal",
		"gemm.metal", "group_norm.metal", "reduce.metal"}
	got := Files()
	if len(got) != len(want) {
		t.Fatalf("got %d files, want %v", len(got), want)
	}
	for i, f := range got {
		if f.Name != want[i] {
			t.Errorf("file %d is %s, want %s", i, f.Name, want[i])
		}
		if !strings.Contains(f.Source, "#include <metal_stdlib>") {
			t.Errorf("%s does not include <metal_stdlib>", f.Name)
		}
	}
	if src := Source(); !strings.Contains(src, "#line 1 \"conv3d.metal\"") {
		t.Errorf("Source lacks the #line marker of conv3d.metal")
	}
}

// TestLint checks, per file, what Apple's compiler requires and a C++ compiler would let
// through: no double, float literals with an f suffix, and the calling convention.
func TestLint(t *testing.T) {
	unsuffixed := regexp.MustCompile(`(^|[^\w.])(\d+\.\d*|\.\d+)([eE][-+]?\d+)?([^\w.]|$)`)
	for _, f := range Files() {
		code := stripComments(f.Source)
		for n, line := range strings.Split(code, "\n") {
			if regexp.MustCompile(`\bdouble\b`).MatchString(line) {
				t.Errorf("%s:%d: double is not MSL", f.Name, n+1)
			}
			if m := unsuffixed.FindString(line); m != "" && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				t.Errorf("%s:%d: float literal without f suffix: %q", f.Name, n+1, m)
			}
		}
	}
	sig := regexp.MustCompile(`(?s)kernel void (\w+)\((.*?)\)\s*\{`)
	for _, f := range Files() {
		for _, m := range sig.FindAllStringSubmatch(stripComments(f.Source), -1) {
			if !strings.HasPrefix(strings.TrimSpace(m[2]), "constant ") || !strings.Contains(m[2], "[[buffer(0)]]") {
				t.Errorf("%s: kernel %s does not take its constant argument struct at buffer(0)", f.Name, m[1])
			}
		}
	}
}

func TestKernelNamesUnique(t *testing.T) {
	names := Kernels()
	if len(names) < 30 {
		t.Fatalf("found only %d kernels: %v", len(names), names)
	}
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			t.Errorf("kernel %s is defined twice", names[i])
		}
	}
}

// TestNamesUniqueAcrossFiles: the Metal driver compiles Source(), all files as one
// translation unit, while the emulator compiles each file alone; a struct, macro or helper
// defined in two files would pass on Linux and fail to compile on a Mac.
func TestNamesUniqueAcrossFiles(t *testing.T) {
	decl := regexp.MustCompile(`(?m)^(?:struct\s+(\w+)|#define\s+(\w+)|(?:template\s*<[^>]*>\s*)?(?:inline\s+|static\s+)*[A-Za-z_][\w:<>, ]*?[\s*&](\w+)\s*\([^;]*?\)\s*\{)`)
	where := map[string]string{}
	for _, f := range Files() {
		seen := map[string]bool{}
		for _, m := range decl.FindAllStringSubmatch(stripComments(f.Source), -1) {
			name := m[1] + m[2] + m[3]
			if name == "" || seen[name] {
				continue // overloads and template specialisations within one file are fine
			}
			seen[name] = true
			if other, ok := where[name]; ok {
				t.Errorf("%s is defined in both %s and %s", name, other, f.Name)
			}
			where[name] = f.Name
		}
	}
	for _, want := range []string{"ConvArgs", "CT_BM", "conv_tiled", "red_tree_sum", "gn_tree_sum", "act_sigmoid", "axpy"} {
		if _, ok := where[want]; !ok {
			t.Errorf("the declaration scan missed %s: fix the pattern", want)
		}
	}
}
