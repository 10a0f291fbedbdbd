// Package shaders holds latentad's hand-written Metal Shading Language kernels, one file per
// family of ops (conv3d, group_norm, activation, elementwise, reduce, gemm, adam), embedded
// into the binary so users need no Xcode: the Metal driver compiles Source() at start-up,
// and the Linux MSL emulator compiles the same files as C++.
//
// Conventions every kernel follows (see metal/driver): buffer(0) is a `constant` argument
// struct passed by value, buffers 1…n are device memory bound at a tensor's first element,
// threadgroup memory is static, and grids are whole threadgroups, so kernels guard bounds.
// Each file is self-contained (its own includes and helpers) and every name is unique
// across files, so the files compile alone or concatenated.
package shaders

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.metal
var files embed.FS

// File is one .metal source file.
type File struct {
	Name   string // base name, e.g. "conv3d.metal"
	Source string
}

// Files returns every .metal file, sorted by name.
func Files() []File {
	names, err := fs.Glob(files, "*.metal")
	if err != nil {
		panic(err) // the pattern is constant and valid
	}
	sort.Strings(names)
	out := make([]File, 0, len(names))
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			panic(err) // embedded at build time, so always readable
		}
		out = append(out, File{Name: n, Source: string(b)})
	}
	return out
}

// Source returns all files concatenated into one translation unit, in name order, each
// preceded by a #line directive so compiler messages name the original file and line.
func Source() string {
	var sb strings.Builder
	for _, f := range Files() {
		sb.WriteString("#line 1 \"" + f.Name + "\"\n")
		sb.WriteString(f.Source)
		if !strings.HasSuffix(f.Source, "\n") {
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

// Kernels returns the name of every kernel function (`kernel void NAME(`), sorted.
func Kernels() []string {
	var names []string
	for _, f := range Files() {
		src := f.Source
		for {
			i := strings.Index(src, "kernel void ")
			if i < 0 {
				break
			}
			src = src[i+len("kernel void "):]
			j := strings.IndexByte(src, '(')
			if j < 0 {
				break
			}
			names = append(names, strings.TrimSpace(src[:j]))
		}
	}
	sort.Strings(names)
	return names
}
