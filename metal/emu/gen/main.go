// Command gen translates every shaders/*.metal file (and the emulator's own test kernels in
// metal/emu/testdata) into C++ for the MSL emulator, after linting them for what Apple's
// compiler would reject. Run it as `go generate ./metal/emu/` from the module root (or
// `go run ./metal/emu/gen`); it writes metal/emu/kernels/… and metal/emu/internal/testkernels/…,
// which are checked in. Problems are printed as file:line: message and nothing is written.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/latentad/latentad/metal/emu/internal/msl"
)

func main() {
	check := flag.Bool("check", false, "report stale generated files instead of writing them (exit status 1 when any)")
	flag.Parse()
	root, err := msl.FindRoot(".")
	if err != nil {
		fail(err)
	}
	out, err := msl.Generate(root)
	if err != nil {
		var es msl.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintln(os.Stderr, e.Error())
			}
			fmt.Fprintf(os.Stderr, "msl-emulator generator: %d problem(s); nothing written\n", len(es))
			os.Exit(1)
		}
		fail(err)
	}
	if *check {
		if st := msl.Stale(root, out); len(st) > 0 {
			for _, p := range st {
				fmt.Fprintln(os.Stderr, "stale:", p)
			}
			os.Exit(1)
		}
		return
	}
	if err := msl.Write(root, out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "msl-emulator generator:", err)
	os.Exit(1)
}
