package fallback

import (
	"runtime"
	"sync"
	"unsafe"
	"weak"
)

// Tensor storage. Buffers of at least offHeapMin bytes live outside the Go heap, in
// anonymous memory mappings where the OS has them (mem_mmap.go), smaller ones in ordinary
// slices. The garbage collector sizes its heap target from the live heap, so with tensors
// on the heap a training run's resident memory drifts towards twice its working set;
// mapped buffers count once, and Release returns them to the OS at once. A mapping costs a
// system call and rounds up to a page, hence the threshold.
//
// Use after Release cannot reach unmapped memory through a tensor: Release marks the
// buffer, which its views share, and every op checks the mark first (data).
//
// The collector does not see mapped memory, so a program that drops tensors without
// Release would grow it unchecked. Whenever the mappings would double, newBuffer runs a
// collection and unmaps the buffers it found unreachable. That happens inside Alloc,
// between ops, so no op can be using them; a slice from HostSlice must therefore not be
// used across an Alloc once its tensor is unreachable, and a program that runs ops on
// several goroutines at once must keep their tensors reachable until the ops return
// (runtime.KeepAlive).
const offHeapMin = 64 << 10

// buffer is a tensor's storage, shared by the tensor and its views.
type buffer struct {
	data     []float32
	m        *mapping // nil for heap storage
	released bool
}

// mapping is one anonymous mapping and the buffer it backs, held weakly so that a dropped
// buffer can be told apart.
type mapping struct {
	owner weak.Pointer[buffer]
	mem   []byte
}

// mapped tracks the live mappings.
var mapped struct {
	sync.Mutex
	all   map[*mapping]struct{}
	bytes int // their total size
	next  int // when bytes would pass this, collect first (at least firstCollect)
}

// firstCollect is the mapped size at which newBuffer first runs a collection.
const firstCollect = 64 << 20

func newBuffer(n int) *buffer {
	if size := 4 * n; size >= offHeapMin {
		mapped.Lock()
		over := mapped.bytes+size > max(mapped.next, firstCollect)
		mapped.Unlock()
		if over {
			collect()
			mapped.Lock()
			mapped.next = 2 * (mapped.bytes + size) // a run that releases its tensors passes each doubling once
			mapped.Unlock()
		}
		if mem := sysMap(size); mem != nil {
			b := &buffer{data: unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(mem))), n)}
			b.m = &mapping{owner: weak.Make(b), mem: mem}
			mapped.Lock()
			if mapped.all == nil {
				mapped.all = map[*mapping]struct{}{}
			}
			mapped.all[b.m] = struct{}{}
			mapped.bytes += len(mem)
			mapped.Unlock()
			return b
		}
	}
	return &buffer{data: make([]float32, n)}
}

// release frees the storage now; the buffer is unusable afterwards.
func (b *buffer) release() {
	b.released = true
	if b.m != nil {
		mapped.Lock()
		delete(mapped.all, b.m)
		mapped.Unlock()
		unmap(b.m.mem)
	}
	b.data, b.m = nil, nil
}

// collect runs a garbage collection and unmaps the buffers it found unreachable.
func collect() {
	runtime.GC() // returns with the sweep done: the weak pointers of dropped buffers are nil
	var dead [][]byte
	mapped.Lock()
	for m := range mapped.all {
		if m.owner.Value() == nil {
			delete(mapped.all, m)
			dead = append(dead, m.mem)
		}
	}
	mapped.Unlock()
	for _, mem := range dead {
		unmap(mem)
	}
}

func unmap(mem []byte) {
	if err := sysUnmap(mem); err != nil {
		panic("fallback: unmapping a tensor buffer: " + err.Error())
	}
	mapped.Lock()
	mapped.bytes -= len(mem)
	mapped.Unlock()
}

// mappedBytes reports the size of the live mappings (for tests).
func mappedBytes() int {
	mapped.Lock()
	defer mapped.Unlock()
	return mapped.bytes
}
