// Package emu is the MSL emulator: a metal/driver.Driver that runs the project's
// shaders/*.metal kernels on a Linux CPU, so `go test` proves the same kernel sources a Mac
// compiles. The kernels stay plain MSL; a generator translates them to C++ at the token level
// and a shim header (emu.h) supplies what MSL provides.
//
// # Using it
//
//	d, err := emu.New() // driver.Driver named "msl-emulator"; error off linux+cgo
//
// Only tests should import this package: building it compiles every kernel with g++.
//
// # After editing a .metal file
//
// Run, from the module root:
//
//	go generate ./metal/emu/
//
// This lints every shaders/*.metal (and metal/emu/testdata/*.metal) and rewrites the checked-in
// C++ under metal/emu/kernels/<file>/ (one cgo package per .metal file, so files compile in
// parallel and an edit recompiles one package); `go run ./metal/emu/gen -check` only lists
// stale files. Edits to emu.h or emu_abi.h also need a regeneration (their hash is recorded in
// every generated file, since Go does not track headers outside a package's directory). Go's build cache cannot see .metal edits, so a
// test (metal/emu/internal/msl) fails while the generated files are stale. Problems print as
// file:line: message and nothing is written. The lint rejects what g++ accepts but Apple's
// compiler does not: pointers or references without an address space (parameters, return
// types, local declarations), double, recursion, std::, new/delete, exceptions, goto, unsuffixed floating literals
// (0.5 is a float in MSL but a double in C++: write 0.5f), #include other than <metal_*>, and
// kernel signatures outside the calling convention (template kernels, threadgroup parameters,
// unbound parameters, unsupported thread attributes).
//
// Each .metal file is its own C++ translation unit inside an anonymous namespace, so files must
// be self-contained (as shaders/shaders.go also requires) and helper names may repeat across
// files; kernel names must be unique across files.
//
// # What the translation does
//
//   - `[[...]]` attributes are blanked; `#line` keeps compiler errors pointing into the .metal.
//   - A statement-initial `threadgroup T name[...];` becomes a `static thread_local` (EMU_TLS in
//     emu.h): all threads of a group run on one OS thread, so that is exactly one copy per
//     threadgroup; the first thread of each group to reach it fills it with 0xFF bytes. A
//     statement-initial `constant T name = ...;` becomes `static const`. Other address-space
//     words (pointer qualifiers) are dropped.
//   - Read swizzles `v.xy`, `v.zyx` become `v.swz<0,1>()`; assigning to a swizzle is rejected.
//   - One wrapper per `kernel void NAME(...)` binds buffer(0) (the argument struct, whose size
//     Dispatch checks against the Go bytes), buffers 1..n and the thread attributes
//     (thread_position_in_grid, thread_position_in_threadgroup, threadgroup_position_in_grid,
//     threads_per_threadgroup, threadgroups_per_grid, threads_per_grid,
//     thread_index_in_threadgroup, thread_index_in_simdgroup, simdgroup_index_in_threadgroup,
//     threads_per_simdgroup, thread_execution_width, simdgroups_per_threadgroup) as the declared
//     uint/ushort scalar or vector type. [[max_total_threads_per_threadgroup(n)]] on a kernel
//     becomes its MaxThreads (else 1024).
//
// # How kernels run
//
// Threadgroups run in parallel on GOMAXPROCS OS threads. A kernel that can reach no barrier and
// no simd-group function (judged from its body, its helpers and macros) runs each group's
// threads as a plain loop. Any other kernel runs every thread of a group as a fiber: a barrier
// parks the fiber and the group continues when every thread still running waits at the same
// barrier (threads that returned are not waited for); threads waiting at different barriers
// are a deadlock, reported by Wait with the sites and thread ranges. A simd-group function
// (simd_sum, simd_shuffle_down, …; 32 lanes) publishes each lane's value and releases the
// lanes of a simdgroup waiting at the same call together; lanes elsewhere do not take part,
// as under divergence on the GPU. simdgroup_matrix<float,8,8> is held whole by every lane.
//
// Buffers live outside the Go heap with a guard page after the data: an out-of-bounds access
// by a kernel crashes the process (SIGSEGV in kernel code) instead of corrupting memory. The
// same holds for a fiber's 64 KB stack. Threadgroup memory is filled with 0xFF bytes (NaN as
// float) at the start of each threadgroup, so reading it before any thread wrote it shows up
// as NaN, where the GPU would give garbage. Integer division by zero, which the GPU survives,
// kills the process (SIGFPE) here.
//
// Races and missing barriers: LATENTAD_EMU_ORDER=reverse or =shuffle runs each group's threads
// (and the groups) in reversed or shuffled order (shuffle draws a new order after every
// barrier; LATENTAD_EMU_SEED picks the shuffles); a kernel whose result changes is missing a
// barrier or races. CI can run the Metal tests once more with LATENTAD_EMU_ORDER=shuffle.
//
// Platforms: linux/amd64 (g++ ≥ 12, -march=x86-64-v3, so an AVX2+FMA CPU) and linux/arm64
// (checked with aarch64-linux-gnu-g++ under qemu-aarch64). Elsewhere, or without cgo, New
// returns ErrUnavailable. half is _Float16 (__fp16 on arm64); half vectors are not provided.
//
// # What the emulator cannot vouch for (a Mac run must confirm)
//
//   - Numerics: math is computed precisely (Metal uses fast math unless precise:: is named),
//     g++ contracts a·b+c into an FMA where it chooses (as Metal does, not necessarily at the
//     same places), and simd reductions combine lanes in lane order; compare with tolerances,
//     not bits.
//   - A pipeline's real MaxThreads can be below 1024 when a kernel uses many registers; the
//     emulator reports 1024 (or the kernel's max_total_threads_per_threadgroup).
//   - simdgroup_matrix operands must be uniform across the simdgroup; the emulator does not
//     check it (each lane computes with its own operands).
//   - Threadgroup memory is checked against 32 KB only for arrays declared in a kernel's
//     outermost block; Metal's compiler itself is not run, so MSL it rejects for reasons the
//     lint does not know still passes here.
//   - A barrier reached by only some threads while the others returned passes here (the notes'
//     rule); on the GPU it is undefined behaviour.
//   - Speed: nothing here predicts GPU performance.
package emu

//go:generate go run ./gen
