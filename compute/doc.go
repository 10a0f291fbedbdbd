// Package compute is the contract between the models and the backends that run them.
//
// A Device owns buffers and executes the small set of operations the latentad models
// need (3-D convolution and its two gradients, GroupNorm, alone or fused with SiLU and a
// per-sample bias, activations, elementwise arithmetic, broadcasts, reductions, a small
// GEMM and a fused Adam step). Tensors are NCDHW float32, PyTorch's layout, so weights and
// latents cross the host boundary without reordering.
//
// Two backends implement Device: package fallback (pure Go, any CPU) and package metal
// (Apple GPUs, or an emulator on Linux). Package devicetest is the conformance suite both
// run against a float64 reference.
//
// Ordering: a Device may queue work (Metal encodes into a command buffer). Ops see the
// results of every op issued before them on the same Device. Download waits for all queued
// work; nothing else may force a round trip to the host.
//
// Misuse (wrong shapes, tensors of another device) is a programming error and panics;
// faults a backend can only see later (a GPU error) are reported by Sync and Download.
package compute
