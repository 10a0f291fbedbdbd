// Package fallback is latentad's CPU backend: a compute.Device in pure Go that runs on any
// machine. Buffers are float32 arrays, large ones outside the Go heap (mem.go); a tensor is
// a window (offset, length) into one, so the models can keep all parameters as views of a
// single allocation.
//
// Every op is written for correctness first and is checked by compute/devicetest against a
// float64 reference. Large ops are split across goroutines (at most runtime.GOMAXPROCS) so
// that each goroutine owns a disjoint part of the output; results therefore do not depend
// on the number of threads. The three convolutions live in conv.go as functions over plain
// slices and a ConvShape, so that faster kernels (package fallback/kern) can replace them.
package fallback

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/latentad/latentad/compute"
)

// New returns the CPU device.
func New() compute.Device { return &cpu{} }

type cpu struct{}

func (d *cpu) Name() string { return "cpu" }

func (d *cpu) Alloc(shape ...int) *compute.Tensor {
	return compute.NewTensor(d, newBuffer(compute.Numel(shape)), 0, shape)
}

// Release frees t's storage (see mem.go) unless t is a view: a tensor that does not start
// at its buffer's beginning or covers less than all of it. A second Release does nothing;
// any other use of t or its views afterwards panics.
func (d *cpu) Release(t *compute.Tensor) {
	if t == nil {
		return
	}
	b := d.buffer(t)
	if b.released || t.Offset() != 0 || t.Len() != len(b.data) {
		return
	}
	b.release()
}

func (d *cpu) Upload(t *compute.Tensor, src []float32) {
	dst := d.data(t)
	if len(src) != len(dst) {
		panic(fmt.Sprintf("fallback: Upload of %d values into %v", len(src), t))
	}
	copy(dst, src)
}

func (d *cpu) Download(t *compute.Tensor, dst []float32) {
	src := d.data(t)
	if len(src) != len(dst) {
		panic(fmt.Sprintf("fallback: Download of %v into %d values", t, len(dst)))
	}
	copy(dst, src)
}

// HostSlice implements compute.HostMemory: the tensor's elements, not a copy. Keep t
// reachable while using the slice (see mem.go).
func (d *cpu) HostSlice(t *compute.Tensor) []float32 { return d.data(t) }

// Sync has nothing to wait for: every op runs to completion before it returns.
func (d *cpu) Sync() error { return nil }

// data returns the elements of t: its window of the backing storage.
func (d *cpu) data(t *compute.Tensor) []float32 {
	b := d.buffer(t)
	if b.released {
		panic(fmt.Sprintf("fallback: tensor %v used after Release", t))
	}
	off, n := t.Offset(), t.Len()
	return b.data[off : off+n : off+n]
}

// buffer returns t's storage, checking that t belongs to this device.
func (d *cpu) buffer(t *compute.Tensor) *buffer {
	if t == nil {
		panic("fallback: nil tensor")
	}
	if t.Device() != compute.Device(d) {
		panic(fmt.Sprintf("fallback: tensor %v belongs to another device", t))
	}
	b, ok := t.Buffer().(*buffer)
	if !ok {
		panic(fmt.Sprintf("fallback: tensor %v has a %T buffer, not the CPU device's", t, t.Buffer()))
	}
	return b
}

// parallel runs body over [0, n) split into contiguous chunks, one per worker. cost is the
// rough number of scalar operations per index; the work is split only when the total is
// large enough to pay for starting goroutines.
func parallel(n, cost int, body func(lo, hi int)) {
	const minWork = 1 << 16 // below ~64K simple operations one core is faster
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 || n*cost < 2*minWork {
		if n > 0 {
			body(0, n)
		}
		return
	}
	if w := n * cost / minWork; w < workers {
		workers = w
	}
	var wg sync.WaitGroup
	for i := range workers {
		lo, hi := i*n/workers, (i+1)*n/workers
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(lo, hi)
		}()
	}
	wg.Wait()
}

func mustSameLen(op string, ts ...*compute.Tensor) {
	for _, t := range ts[1:] {
		if t.Len() != ts[0].Len() {
			panic(fmt.Sprintf("fallback: %s: %v and %v differ in length", op, ts[0], t))
		}
	}
}

func mustShape(op, what string, t *compute.Tensor, shape ...int) {
	if t.Rank() != len(shape) {
		panic(fmt.Sprintf("fallback: %s: %s is %v, want shape %v", op, what, t, shape))
	}
	for i, d := range shape {
		if t.Dim(i) != d {
			panic(fmt.Sprintf("fallback: %s: %s is %v, want shape %v", op, what, t, shape))
		}
	}
}
