package msl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Group is a set of .metal files generated into one package tree: each file becomes its own
// cgo package (so go build compiles them in parallel and caches them separately) under Out,
// and Out itself gets an aggregator package listing every file's registry.
type Group struct {
	Src    string // directory of .metal files, relative to the module root
	Out    string // output directory, relative to the module root
	Pkg    string // package name of the aggregator
	Symbol string // prefix of the C registry symbols, unique per group
}

// Groups are the two trees the emulator uses: the project's shaders and the emulator's own
// test kernels.
var Groups = []Group{
	{Src: "shaders", Out: "metal/emu/kernels", Pkg: "kernels", Symbol: "shaders"},
	{Src: "metal/emu/testdata", Out: "metal/emu/internal/testkernels", Pkg: "testkernels", Symbol: "testdata"},
}

// Output is the result of a generation run.
type Output struct {
	Files map[string][]byte // path relative to the module root → content
	Stale []string          // previously generated directories whose .metal file is gone
}

var modRe = regexp.MustCompile(`(?m)^module\s+(\S+)`)

// FindRoot walks up from dir to the directory holding go.mod.
func FindRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", fmt.Errorf("no go.mod above %s: run the generator inside the latentad module", dir)
		}
		d = p
	}
}

// Generate reads every group's .metal files under root, lints them, and returns the files to
// write. Lint and parse problems come back as Errors, one per offending line.
func Generate(root string) (*Output, error) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	m := modRe.FindSubmatch(gomod)
	if m == nil {
		return nil, fmt.Errorf("%s: no module line", filepath.Join(root, "go.mod"))
	}
	module := string(m[1])
	shim, err := ShimHash(root)
	if err != nil {
		return nil, err
	}
	out := &Output{Files: map[string][]byte{}}
	var errs Errors
	for _, g := range Groups {
		paths, err := filepath.Glob(filepath.Join(root, g.Src, "*.metal"))
		if err != nil {
			return nil, err
		}
		sort.Strings(paths)
		var pkgs []string
		used := map[string]string{}
		for _, p := range paths {
			rel := g.Src + "/" + filepath.Base(p)
			pkg := PackageName(filepath.Base(p))
			if o, dup := used[pkg]; dup {
				errs = append(errs, Error{rel, 1, fmt.Sprintf("its package name %s clashes with %s; rename one file", pkg, o)})
				continue
			}
			used[pkg] = rel
			src, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			cpp, ferrs := Translate(rel, string(src), g.Out+"/"+pkg+"/kernels_gen.cpp", g.Symbol+"_"+pkg, shim)
			if len(ferrs) > 0 {
				errs = append(errs, ferrs...)
				continue
			}
			dir := g.Out + "/" + pkg
			out.Files[dir+"/kernels_gen.cpp"] = cpp
			out.Files[dir+"/table_gen.go"] = tableGo(g, pkg, rel, g.Symbol+"_"+pkg)
			out.Files[dir+"/doc_gen.go"] = docGo(pkg, fmt.Sprintf("Package %s is %s compiled as C++ for the MSL emulator (package metal/emu).", pkg, rel))
			pkgs = append(pkgs, pkg)
		}
		out.Files[g.Out+"/all_gen.go"] = allGo(module, g, pkgs)
		out.Files[g.Out+"/doc_gen.go"] = docGo(g.Pkg, fmt.Sprintf("Package %s lists the emulator registries of every %s/*.metal file, each compiled in its own subpackage.", g.Pkg, g.Src))
		ents, _ := os.ReadDir(filepath.Join(root, g.Out))
		for _, e := range ents {
			if !e.IsDir() || used[e.Name()] != "" {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, g.Out, e.Name(), "doc_gen.go")); err == nil {
				out.Stale = append(out.Stale, g.Out+"/"+e.Name())
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// ShimHash identifies the shim headers (metal/emu/emu.h and emu_abi.h) by content.
func ShimHash(root string) (string, error) {
	h := sha256.New()
	for _, n := range []string{"emu.h", "emu_abi.h"} {
		b, err := os.ReadFile(filepath.Join(root, "metal/emu", n))
		if err != nil {
			return "", fmt.Errorf("reading the emulator shim: %w", err)
		}
		h.Write(b)
	}
	return "emu.h+emu_abi.h sha256 " + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// PackageName derives a Go package name from a .metal file name.
func PackageName(base string) string {
	n := strings.ToLower(strings.TrimSuffix(base, ".metal"))
	var sb strings.Builder
	for _, c := range n {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			sb.WriteRune(c)
		} else {
			sb.WriteByte('_')
		}
	}
	s := sb.String()
	if s == "" || (s[0] >= '0' && s[0] <= '9') || s[0] == '_' {
		s = "k" + s
	}
	return s
}

// Translate lints one .metal file and returns its C++ translation unit: the rewritten source
// inside an anonymous namespace (helpers of different files never collide), one wrapper per
// kernel, and the registry returned by extern "C" emu_table_<symbol>.
//
// shim is recorded in a comment: Go's build cache does not hash headers outside a package's
// directory, so the hash of emu.h makes every generated file (and so its package) change
// when the shim does.
func Translate(name, src, outName, symbol, shim string) ([]byte, Errors) {
	f, err := Parse(name, src)
	if err != nil {
		if e, ok := err.(Error); ok {
			return nil, Errors{e}
		}
		return nil, Errors{{name, 1, err.Error()}}
	}
	if errs := f.Lint(); len(errs) > 0 {
		return nil, errs
	}
	body, errs := f.rewrite()
	if len(errs) > 0 {
		return nil, errs
	}
	ks, errs := f.Kernels()
	if len(errs) > 0 {
		return nil, errs
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "//go:build linux && cgo\n\n// Code generated by go run ./metal/emu/gen from %s; DO NOT EDIT.\n// Shim: %s\n\n#include \"emu.h\"\n\nnamespace {\n#line 1 %q\n", name, shim, name)
	b.WriteString(body)
	if !strings.HasSuffix(body, "\n") {
		b.WriteByte('\n')
	}
	line := bytes.Count(b.Bytes(), []byte("\n")) + 2
	fmt.Fprintf(&b, "#line %d %q\n", line, outName)
	for _, k := range ks {
		b.WriteString(wrapper(k))
	}
	b.WriteString("}  // namespace\n\n")
	if len(ks) == 0 {
		fmt.Fprintf(&b, "extern \"C\" const emu_table* emu_table_%s(void) {\n\tstatic const emu_table t = {nullptr, 0};\n\treturn &t;\n}\n", symbol)
		return b.Bytes(), nil
	}
	b.WriteString("static const emu_kernel emu_kernels[] = {\n")
	for _, k := range ks {
		plain := "nullptr"
		if !k.Blocking {
			plain = "emu_plain<" + k.Name + "__emu>"
		}
		size := "-1"
		if k.ArgsType != "" {
			size = "(int32_t)sizeof(" + k.ArgsType + ")"
		}
		blocking := 0
		if k.Blocking {
			blocking = 1
		}
		fmt.Fprintf(&b, "\t{%q, %s__emu, %s, %d, %s, %d, %d, %q, %d},\n", k.Name, k.Name, plain, k.NBuf, size, blocking, k.Line, name, k.MaxThreads)
	}
	b.WriteString("};\n\n")
	fmt.Fprintf(&b, "extern \"C\" const emu_table* emu_table_%s(void) {\n\tstatic const emu_table t = {emu_kernels, %d};\n\treturn &t;\n}\n", symbol, len(ks))
	return b.Bytes(), nil
}

const genHeader = "// Code generated by go run ./metal/emu/gen; DO NOT EDIT.\n\n"

// cxxFlags are the flags of every generated kernel package. -march=x86-64-v3 gives fma() an
// instruction instead of a libm call (cgo's allow-list rejects -mfma itself);
// -fstack-clash-protection probes large frames page by page, so a kernel with a huge
// thread-private array hits its fiber's guard page instead of jumping over it.
const cxxFlags = `// #cgo CXXFLAGS: -I${SRCDIR}/%s -std=c++17 -O2 -fstack-clash-protection -fno-exceptions -fno-rtti -Wall -Wno-unused-function -Wno-unused-variable -Wno-unused-but-set-variable -Wno-unknown-pragmas
// #cgo amd64 CXXFLAGS: -march=x86-64-v3
`

func tableGo(g Group, pkg, src, symbol string) []byte {
	// The include path climbs from Out/pkg back to metal/emu, where emu.h lives.
	up := strings.Repeat("../", strings.Count(strings.TrimPrefix(g.Out, "metal/emu/"), "/")+2)
	up = strings.TrimSuffix(up, "/")
	var b bytes.Buffer
	b.WriteString(genHeader)
	b.WriteString("//go:build linux && cgo\n\n")
	fmt.Fprintf(&b, "package %s\n\n", pkg)
	fmt.Fprintf(&b, cxxFlags, up)
	fmt.Fprintf(&b, "// const void* emu_table_%s(void);\nimport \"C\"\n\nimport \"unsafe\"\n\n", symbol)
	fmt.Fprintf(&b, "// Table returns the emulator registry (a C emu_table) of the kernels in %s.\n", src)
	fmt.Fprintf(&b, "func Table() unsafe.Pointer { return C.emu_table_%s() }\n", symbol)
	return b.Bytes()
}

func docGo(pkg, doc string) []byte {
	return []byte(genHeader + "// " + doc + "\npackage " + pkg + "\n")
}

func allGo(module string, g Group, pkgs []string) []byte {
	var b bytes.Buffer
	b.WriteString(genHeader)
	b.WriteString("//go:build linux && cgo\n\n")
	fmt.Fprintf(&b, "package %s\n\nimport (\n\t\"unsafe\"\n", g.Pkg)
	if len(pkgs) > 0 {
		b.WriteString("\n")
	}
	for _, p := range pkgs {
		fmt.Fprintf(&b, "\tk_%s %q\n", p, module+"/"+g.Out+"/"+p)
	}
	b.WriteString(")\n\n")
	fmt.Fprintf(&b, "// Tables returns the registry of every %s/*.metal file, in file name order.\n", g.Src)
	b.WriteString("func Tables() []unsafe.Pointer {\n\treturn []unsafe.Pointer{\n")
	for _, p := range pkgs {
		fmt.Fprintf(&b, "\t\tk_%s.Table(),\n", p)
	}
	b.WriteString("\t}\n}\n")
	return b.Bytes()
}

// Stale compares generated output with the files on disk and lists what differs.
func Stale(root string, out *Output) []string {
	var diffs []string
	for p, want := range out.Files {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil || !bytes.Equal(got, want) {
			diffs = append(diffs, p)
		}
	}
	diffs = append(diffs, out.Stale...)
	sort.Strings(diffs)
	return diffs
}

// Write writes the generated files (only those that changed) and removes stale directories.
func Write(root string, out *Output) error {
	for p, data := range out.Files {
		full := filepath.Join(root, p)
		if old, err := os.ReadFile(full); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			return err
		}
	}
	for _, d := range out.Stale {
		full := filepath.Join(root, d)
		for _, n := range []string{"kernels_gen.cpp", "table_gen.go", "doc_gen.go"} {
			if err := os.Remove(filepath.Join(full, n)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		_ = os.Remove(full) // only succeeds when nothing else is left
	}
	return nil
}
