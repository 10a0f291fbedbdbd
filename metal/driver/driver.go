// Package driver is the thin seam between the platform-neutral Metal backend (package
// metal) and what actually runs kernels: Apple's Metal through darwinkit on macOS, or the
// MSL emulator (package metal/emu) on Linux, where CI proves the same .metal files.
//
// Calling convention shared by every kernel in shaders/*.metal:
//   - buffer(0) is the kernel's argument struct, passed by value (setBytes on Metal);
//   - buffer(1) … buffer(n) are the device buffers, in the order given to Dispatch;
//   - threadgroup memory is declared statically inside kernels (no dynamic length);
//   - work is launched as whole threadgroups (dispatchThreadgroups); kernels guard bounds.
package driver

import "unsafe"

// Buffer is device memory that the host can also address (shared storage on Apple GPUs).
type Buffer interface {
	// Contents points at the first byte; valid until Release.
	Contents() unsafe.Pointer
	// Len is the size in bytes.
	Len() int
	// Release frees the memory.
	Release()
}

// Kernel is a compiled compute pipeline for one kernel function.
type Kernel interface {
	Name() string
	// MaxThreads is the largest threadgroup this pipeline accepts.
	MaxThreads() int
}

// Ref binds a buffer at a byte offset.
type Ref struct {
	Buf    Buffer
	Offset int
}

// Driver runs kernels. Dispatches execute in order; the host may only touch buffer
// contents after Wait.
type Driver interface {
	// Name says what runs the kernels, e.g. "Apple M3 Pro" or "msl-emulator".
	Name() string
	// NewBuffer allocates size bytes, zero-filled.
	NewBuffer(size int) (Buffer, error)
	// Kernel returns the pipeline for a kernel function by name, compiled once and cached.
	Kernel(name string) (Kernel, error)
	// Dispatch queues groups[0]·groups[1]·groups[2] threadgroups of
	// threads[0]·threads[1]·threads[2] threads.
	Dispatch(k Kernel, args []byte, bufs []Ref, groups, threads [3]int)
	// Wait submits what is queued, waits for it, and reports a fault from it.
	Wait() error
	// Close releases the driver's resources.
	Close()
}
