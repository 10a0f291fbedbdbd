package msl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedUpToDate fails when the checked-in C++ under metal/emu/kernels or
// metal/emu/internal/testkernels no longer matches the .metal sources (or the shim headers):
// Go's build cache cannot see those edits, so a stale kernel would run.
func TestGeneratedUpToDate(t *testing.T) {
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Generate(root)
	if err != nil {
		t.Fatalf("the .metal sources do not pass the generator:\n%v", err)
	}
	if st := Stale(root, out); len(st) > 0 {
		t.Fatalf("generated emulator files are stale; run `go generate ./metal/emu/` from the module root:\n  %s", strings.Join(st, "\n  "))
	}
}

const head = "#include <metal_stdlib>\nusing namespace metal;\n"

// TestLint has one case per rule: each source must produce an error mentioning want at the
// given line, and the fixed variant none.
func TestLint(t *testing.T) {
	cases := []struct {
		name     string
		src      string
		line     int
		want     string
		fixedSrc string
	}{
		{"unqualified pointer param",
			"inline float f(float* p) { return p[0]; }\n", 3, "without an address space",
			"inline float f(device float* p) { return p[0]; }\n"},
		{"unqualified reference param",
			"inline float f(const float& p) { return p; }\n", 3, "without an address space",
			"inline float f(thread const float& p) { return p; }\n"},
		{"unqualified kernel param",
			"kernel void k(float* p [[buffer(1)]]) { p[0] = 1.0f; }\n", 3, "without an address space",
			"kernel void k(device float* p [[buffer(1)]]) { p[0] = 1.0f; }\n"},
		{"unqualified return",
			"inline float* f(device float* p) { return p; }\n", 3, "returns a pointer",
			"inline device float* f(device float* p) { return p; }\n"},
		{"unqualified local pointer",
			"inline float f(device float* p) {\n    const float* q = p + 1;\n    return q[0];\n}\n", 4, "local q",
			"inline float f(device float* p) {\n    device const float* q = p + 1;\n    return q[0] * 2.0f;\n}\n"},
		{"kernel in a macro",
			"#define K(name) kernel void name(device float* p [[buffer(1)]]) { p[0] = 1.0f; }\nK(a)\n", 3, "defines a kernel",
			"kernel void a(device float* p [[buffer(1)]]) { p[0] = 1.0f; }\n"},
		{"double",
			"inline float f(float x) { double y = x; return y; }\n", 3, "double",
			"inline float f(float x) { float y = x; return y; }\n"},
		{"recursion",
			"inline float g(float x);\ninline float f(float x) { return x > 1.0f ? g(x - 1.0f) : x; }\ninline float g(float x) { return f(x); }\n", 4, "recursion",
			"inline float f(float x) { return x; }\n"},
		{"std",
			"inline float f(float x) { return std::max(x, 0.0f); }\n", 3, "std::",
			"inline float f(float x) { return max(x, 0.0f); }\n"},
		{"new",
			"inline void f() { float* p = new float[4]; }\n", 3, "dynamic allocation",
			"inline void f() { float p[4]; }\n"},
		{"delete",
			"inline void f(device float* p) { delete p; }\n", 3, "dynamic allocation",
			"inline void f(device float* p) { p[0] = 0.0f; }\n"},
		{"throw",
			"inline void f(device float* p) { if (p[0] < 0.0f) throw 1; }\n", 3, "exceptions",
			"inline void f(device float* p) { if (p[0] < 0.0f) p[0] = 0.0f; }\n"},
		{"try",
			"inline void f() { try { } catch (...) { } }\n", 3, "exceptions",
			"inline void f() { }\n"},
		{"unsuffixed literal",
			"inline float f(float x) { return x * 0.5; }\n", 3, "needs an f suffix",
			"inline float f(float x) { return x * 0.5f; }\n"},
		{"unsuffixed exponent literal",
			"#define EPS 1e-5\n", 3, "needs an f suffix",
			"#define EPS 1e-5f\n"},
		{"template kernel",
			"template <int N>\nkernel void k(device float* p [[buffer(1)]]) { p[0] = N; }\n", 4, "template",
			"kernel void k(device float* p [[buffer(1)]]) { p[0] = 1.0f; }\n"},
		{"threadgroup parameter",
			"kernel void k(threadgroup float* s [[threadgroup(0)]], device float* p [[buffer(1)]]) { p[0] = s[0]; }\n", 3, "static threadgroup memory",
			"kernel void k(device float* p [[buffer(1)]]) { threadgroup float s[4]; p[0] = s[0]; }\n"},
		{"unbound kernel parameter",
			"kernel void k(device float* p [[buffer(1)]], uint i) { p[i] = 1.0f; }\n", 3, "no attribute",
			"kernel void k(device float* p [[buffer(1)]], uint i [[thread_position_in_grid]]) { p[i] = 1.0f; }\n"},
		{"unsupported attribute",
			"kernel void k(device float* p [[buffer(1)]], uint i [[thread_index_in_quadgroup]]) { p[i] = 1.0f; }\n", 3, "not supported",
			"kernel void k(device float* p [[buffer(1)]], uint i [[thread_index_in_simdgroup]]) { p[i] = 1.0f; }\n"},
		{"duplicate buffer",
			"kernel void k(device float* p [[buffer(1)]], device float* q [[buffer(1)]]) { p[0] = q[0]; }\n", 3, "bound twice",
			"kernel void k(device float* p [[buffer(1)]], device float* q [[buffer(2)]]) { p[0] = q[0]; }\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs := Translate("x.metal", head+c.src, "out.cpp", "sym", "shim")
			found := false
			for _, e := range errs {
				if e.Line == c.line && strings.Contains(e.Msg, c.want) && e.File == "x.metal" {
					found = true
				}
			}
			if !found {
				t.Errorf("want x.metal:%d: …%s…; got %v", c.line, c.want, errs)
			}
			if _, errs := Translate("x.metal", head+c.fixedSrc, "out.cpp", "sym", "shim"); len(errs) > 0 {
				t.Errorf("fixed source still fails: %v", errs)
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	src := head + `struct A { uint n; };
constant uint K = 4;
inline float h(threadgroup float* s, uint i) { return s[i]; }
kernel void k(constant A& a [[buffer(0)]],
              device const float4* x [[buffer(1)]],
              device float* y [[buffer(2)]],
              uint2 gid [[thread_position_in_grid]],
              uint t [[thread_index_in_threadgroup]],
              const ushort3 tg [[threadgroup_position_in_grid]]) {
    threadgroup float s[K * 2];
    threadgroup float* p = s;
    s[t] = x[gid.x].zyx.y * float(0.5h);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    y[gid.x] = h(p, t);
}
kernel void plain(device float* y [[buffer(1)]], uint i [[thread_position_in_grid]]) { y[i] = 0.0f; }
`
	f, err := Parse("x.metal", src)
	if err != nil {
		t.Fatal(err)
	}
	body, errs := f.rewrite()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if strings.Count(body, "\n") != strings.Count(src, "\n") {
		t.Errorf("rewrite changed the line count: #line would point to the wrong .metal lines")
	}
	for _, want := range []string{
		"static const uint K = 4;",
		"inline float h(            float* s, uint i)",
		"EMU_TLS float s[K * 2]; EMU_TLS uint64_t s__emu_epoch; emu_tg_fresh(s, s__emu_epoch);",
		"            float* p = s;",
		"x[gid.x].template swz<2,1,0>().y * float(((half)0.5f))",
		"// #include <metal_stdlib>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("rewritten source lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "[[") || strings.Contains(body, "kernel void") {
		t.Errorf("attributes or kernel keyword left:\n%s", body)
	}
	ks, errs := f.Kernels()
	if len(errs) > 0 || len(ks) != 2 {
		t.Fatalf("kernels %v, errors %v", ks, errs)
	}
	if k := ks[0]; k.Name != "k" || k.NBuf != 3 || k.ArgsType != "A" || !k.Blocking {
		t.Errorf("kernel k: %+v", k)
	}
	if k := ks[1]; k.Name != "plain" || k.NBuf != 2 || k.ArgsType != "" || k.Blocking {
		t.Errorf("kernel plain: %+v", k)
	}
	w := wrapper(ks[0])
	for _, want := range []string{"*(A*)b[0]", "(const float4 *)b[1]", "(float *)b[2]", "emu_bi<uint2>(id->tpig)", "(uint)(id->tiitg)", "emu_bi<ushort3>(id->tgpig)"} {
		if !strings.Contains(w, want) {
			t.Errorf("wrapper lacks %q:\n%s", want, w)
		}
	}
}

// TestBlockingThroughHelpersAndMacros: a barrier hidden in a template helper or a macro still
// makes the kernel run as fibers.
func TestBlockingThroughHelpersAndMacros(t *testing.T) {
	src := head + `#define SYNC threadgroup_barrier(mem_flags::mem_threadgroup)
template <int N> inline void tb() { threadgroup_barrier(mem_flags::mem_threadgroup); }
inline void viaMacro() { SYNC; }
kernel void a(device float* y [[buffer(1)]]) { tb<2>(); }
kernel void b(device float* y [[buffer(1)]]) { viaMacro(); }
kernel void c(device float* y [[buffer(1)]]) { y[0] = simd_sum(y[0]); }
kernel void d(device float* y [[buffer(1)]]) { y[0] = 1.0f; }
`
	f, err := Parse("x.metal", src)
	if err != nil {
		t.Fatal(err)
	}
	ks, errs := f.Kernels()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := map[string]bool{"a": true, "b": true, "c": true, "d": false}
	for _, k := range ks {
		if k.Blocking != want[k.Name] {
			t.Errorf("kernel %s: blocking = %v, want %v", k.Name, k.Blocking, want[k.Name])
		}
	}
}

func TestSwizzleAssignmentRejected(t *testing.T) {
	_, errs := Translate("x.metal", head+"inline void f(thread float4& v) { v.xy = float2(0.0f); }\n", "o.cpp", "s", "shim")
	if len(errs) == 0 || !strings.Contains(errs[0].Msg, "swizzle") || errs[0].Line != 3 {
		t.Fatalf("got %v", errs)
	}
}

func TestForeignIncludeRejected(t *testing.T) {
	_, errs := Translate("x.metal", "#include \"common.h\"\n", "o.cpp", "s", "shim")
	if len(errs) == 0 || !strings.Contains(errs[0].Msg, "self-contained") || errs[0].Line != 1 {
		t.Fatalf("got %v", errs)
	}
}

func TestPackageName(t *testing.T) {
	for in, want := range map[string]string{"conv3d.metal": "conv3d", "group-norm.metal": "group_norm", "3d.metal": "k3d", "Adam.metal": "adam"} {
		if got := PackageName(in); got != want {
			t.Errorf("PackageName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCompiles runs g++ over translated sources: a kernel within Apple's 32 KB of threadgroup
// memory compiles, one above it fails with the static_assert naming it.
func TestCompiles(t *testing.T) {
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("g++ not found; the emulator's C++ cannot be compiled here")
	}
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		floats int
		ok     bool
	}{{8192, true}, {8193, false}} {
		src := head + "kernel void big(device float* y [[buffer(1)]], uint i [[thread_index_in_threadgroup]]) {\n" +
			"    threadgroup float s[" + itoa(c.floats) + "];\n    s[i] = 1.0f;\n    threadgroup_barrier(mem_flags::mem_threadgroup);\n    y[i] = s[0];\n}\n"
		cpp, errs := Translate("big.metal", src, "big.cpp", "big", "shim")
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		file := filepath.Join(t.TempDir(), "big.cpp")
		if err := os.WriteFile(file, cpp, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(gxx, "-std=c++17", "-fsyntax-only", "-I", filepath.Join(root, "metal/emu"), file).CombinedOutput()
		if c.ok && err != nil {
			t.Errorf("%d floats of threadgroup memory: g++ failed:\n%s", c.floats, out)
		}
		if !c.ok && (err == nil || !strings.Contains(string(out), "kernel big declares more threadgroup memory") || !strings.Contains(string(out), "big.metal:4")) {
			t.Errorf("%d floats of threadgroup memory: want the static_assert at big.metal:4, got err %v:\n%s", c.floats, err, out)
		}
	}
}

func itoa(n int) string {
	s := ""
	for {
		s = string(rune('0'+n%10)) + s
		n /= 10
		if n == 0 {
			return s
		}
	}
}
