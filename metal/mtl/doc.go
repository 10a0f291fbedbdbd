// Package mtl is the macOS Metal driver under package metal: it compiles the embedded
// shaders at start-up and runs kernels on the GPU through github.com/progrium/darwinkit.
// Everything but this thin driver is platform-neutral and tested on Linux through the MSL
// emulator; this package builds only on darwin (darwinkit needs cgo and the macOS SDK), and
// `go run ./internal/darwincheck` type-checks it from any machine.
package mtl
