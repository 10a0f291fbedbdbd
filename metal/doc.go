// Package metal is latentad's GPU backend: a compute.Device that runs the hand-written
// kernels of package shaders through a driver.Driver.
//
// Everything that does not need Apple's frameworks lives here and is platform-neutral:
// argument packing (one `constant` struct per kernel, packed as 32-bit words), grid sizes,
// the choice between kernel variants by shape, a size-bucketed pool of device buffers (so a
// training step allocates nothing new), and the ordering rules. Two drivers sit under it:
// package metal/mtl (darwinkit, macOS only) and package metal/emu (the MSL emulator that
// lets Linux CI execute every kernel).
//
// Ordering: ops only queue dispatches; the driver runs them in order. Only Download, Sync
// and the host side of Upload ever wait, so a whole forward or backward pass is one batch
// of GPU work. An Upload while work is queued is staged (host copy into a fresh buffer, then
// a queued copy kernel) rather than waiting; a buffer released while queued work may still
// use it returns to the pool only for GPU-ordered reuse until the next wait.
//
// A Device is not safe for concurrent use by several goroutines.
package metal

// What is proven where
//
// On Linux, `go test ./metal/` runs every kernel of package shaders through the MSL
// emulator (package metal/emu): the compute/devicetest conformance suite with the automatic
// kernel choice and with each convolution variant forced, every convolution variant and
// reduction split against a float64 definition, long rows that make every strided loop turn
// more than once, the buffer pool and the staging of uploads, and a small velocity model's
// forward pass, gradients and Adam step against the CPU backend. The darwin driver
// (package metal/mtl) never runs there; `go run ./internal/darwincheck` type-checks it
// against darwinkit. Only a Mac can confirm that Apple's compiler accepts the shaders (the
// emulator's lint covers the known differences), the driver's Objective-C calls, the speed,
// and fast-math accuracy; on a Mac the same tests run on the GPU instead of the emulator.
