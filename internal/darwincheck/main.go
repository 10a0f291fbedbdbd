// Command darwincheck type-checks every package of the module as it builds on macOS
// (GOOS=darwin GOARCH=arm64 CGO_ENABLED=1) from any machine, without a C compiler or the
// macOS SDK: it asks `go list -deps` which files a darwin build uses, then runs go/types
// over them in dependency order with FakeImportC. It catches wrong darwinkit method names,
// argument types and undefined symbols in the //go:build darwin files that no Linux build
// compiles; it cannot check C.xxx calls into cgo preambles.
//
// Usage (from the module root; CI runs it as `make darwin-check`):
//
//	go run ./internal/darwincheck [-test=false] [packages]   # default ./...
//
// Test files are checked too (as `go vet` would see them on a Mac) unless -test=false. It
// prints file:line:col: message for every type error and exits 1 if there is any.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

func main() {
	tests := flag.Bool("test", true, "also type-check the _test.go files of the named packages")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	start := time.Now()
	st, err := check(".", patterns, *tests, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "darwincheck: %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "darwincheck: %d packages (%d of this module) for darwin/arm64 in %.1fs (go list %.1fs, type-checking %.1fs): %d errors\n",
		st.packages, st.own, time.Since(start).Seconds(), st.list.Seconds(), st.typecheck.Seconds(), st.errors)
	if st.errors > 0 {
		os.Exit(1)
	}
}

// listed is the part of `go list -json` output used here.
type listed struct {
	ImportPath string
	Dir        string
	Name       string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	ImportMap  map[string]string
	Module     *struct {
		Path      string
		Main      bool
		GoVersion string
	}
	Error *struct {
		Pos string
		Err string
	}
}

type stats struct {
	packages, own, errors int
	list, typecheck       time.Duration
}

// goList runs `go list -e -json -deps` for darwin/arm64 with cgo in dir; with tests, the
// test variants of the named packages ("p [p.test]", whose GoFiles include the _test.go
// files) come too.
func goList(dir string, patterns []string, tests bool) ([]*listed, error) {
	args := []string{"list", "-e", "-json", "-deps"}
	if tests {
		args = append(args, "-test")
	}
	args = append(args, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list for darwin/arm64 failed: %v\n%s", err, stderr.String())
	}
	var pkgs []*listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(listed)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// check type-checks patterns (relative to dir) and every dependency, writing each error
// to w. Packages of the main module get full bodies; dependencies only their
// declarations, which is all their importers can see and much faster. An error found in
// both a package and its test variant is reported once.
func check(dir string, patterns []string, tests bool, w io.Writer) (stats, error) {
	var st stats
	t0 := time.Now()
	pkgs, err := goList(dir, patterns, tests)
	if err != nil {
		return st, err
	}
	st.list = time.Since(t0)
	seen := map[string]bool{}
	report := func(msg string) {
		if !seen[msg] {
			seen[msg] = true
			fmt.Fprintln(w, msg)
			st.errors++
		}
	}
	fset := token.NewFileSet()
	done := map[string]*types.Package{"unsafe": types.Unsafe}
	sizes := types.SizesFor("gc", "arm64")
	for _, p := range pkgs {
		if p.ImportPath == "unsafe" || p.ImportPath == "C" {
			continue
		}
		if p.Name == "main" && strings.HasSuffix(p.ImportPath, ".test") {
			continue // the generated test main, in the build cache
		}
		own := p.Module != nil && p.Module.Main
		if p.Error != nil {
			// A package with no darwin files (a Linux-only one matched by ./...) is skipped
			// as `go build ./...` skips it; should anything import it, that import fails.
			if !strings.Contains(p.Error.Err, "build constraints exclude all Go files") {
				report(fmt.Sprintf("%s: %s", orDefault(p.Error.Pos, p.ImportPath), p.Error.Err))
			}
			continue
		}
		files, err := parseFiles(fset, p)
		if err != nil {
			report(err.Error())
			continue
		}
		conf := types.Config{
			FakeImportC:      true,
			Sizes:            sizes,
			IgnoreFuncBodies: !own,
			Importer:         importer{done: done, importMap: p.ImportMap},
			Error:            func(err error) { report(err.Error()) },
		}
		if p.Module != nil && p.Module.GoVersion != "" {
			conf.GoVersion = "go" + p.Module.GoVersion
		} else if p.Standard {
			conf.GoVersion = runtimeVersion()
		}
		// A test variant's path is "p [p.test]"; the package itself is still p.
		path, _, _ := strings.Cut(p.ImportPath, " ")
		pkg, _ := conf.Check(path, fset, files, nil)
		done[p.ImportPath] = pkg
		st.packages++
		if own {
			st.own++
		}
	}
	st.typecheck = time.Since(t0) - st.list
	return st, nil
}

// parseFiles parses a package's Go and cgo files concurrently.
func parseFiles(fset *token.FileSet, p *listed) ([]*ast.File, error) {
	names := append(append([]string(nil), p.GoFiles...), p.CgoFiles...)
	files := make([]*ast.File, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			files[i], errs[i] = parser.ParseFile(fset, filepath.Join(p.Dir, n), nil, parser.SkipObjectResolution)
		}()
	}
	wg.Wait()
	return files, errors.Join(errs...)
}

// importer resolves imports from the packages already checked, through the importing
// package's ImportMap (vendored standard-library paths).
type importer struct {
	done      map[string]*types.Package
	importMap map[string]string
}

func (im importer) Import(path string) (*types.Package, error) {
	if m, ok := im.importMap[path]; ok {
		path = m
	}
	if p, ok := im.done[path]; ok && p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("package %s was not type-checked before its importer (go list order)", path)
}

// runtimeVersion is the toolchain's language version, e.g. "go1.26".
func runtimeVersion() string {
	v := runtime.Version()
	if i := strings.Index(v, "."); i >= 0 {
		if j := strings.Index(v[i+1:], "."); j >= 0 {
			return v[:i+1+j]
		}
	}
	if strings.HasPrefix(v, "go") {
		return v
	}
	return ""
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
