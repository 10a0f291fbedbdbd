//go:build linux && cgo

package emu

// #cgo CXXFLAGS: -std=c++17 -O2 -fno-exceptions -fno-rtti -Wall
// #include <stdlib.h>
// #include "emu_abi.h"
// const char* emu_run(const emu_kernel* k, void* const* bufs, const emu_dispatch* d, uint64_t g0, uint64_t g1);
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/latentad/latentad/metal/driver"
	"github.com/latentad/latentad/metal/emu/kernels"
)

// MaxThreads is the largest threadgroup the emulator accepts, as on Apple GPUs.
const MaxThreads = 1024

// Options configure an emulator driver.
type Options struct {
	// Tables are the kernel registries to serve (each a Table() of a generated package);
	// nil means the project's shaders (package metal/emu/kernels).
	Tables []unsafe.Pointer
	// Order is the thread order inside each threadgroup: "forward" (default), "reverse" or
	// "shuffle"; empty means the LATENTAD_EMU_ORDER environment variable.
	Order string
	// Seed drives "shuffle"; 0 means LATENTAD_EMU_SEED, else 1.
	Seed uint64
	// Workers is how many OS threads run threadgroups; 0 means GOMAXPROCS.
	Workers int
}

// New returns an emulator driver over the project's shaders, configured by the environment
// (LATENTAD_EMU_ORDER, LATENTAD_EMU_SEED).
func New() (driver.Driver, error) { return NewWith(Options{}) }

// NewWith returns an emulator driver with explicit options.
func NewWith(o Options) (driver.Driver, error) {
	d := &emuDriver{kernels: map[string]*kernel{}}
	tables := o.Tables
	if tables == nil {
		tables = kernels.Tables()
	}
	for _, t := range tables {
		tab := (*C.emu_table)(t)
		ks := unsafe.Slice(tab.kernels, int(tab.n))
		for i := range ks {
			k := &ks[i]
			name := C.GoString(k.name)
			file := C.GoString(k.file)
			if o, dup := d.kernels[name]; dup {
				return nil, fmt.Errorf("msl-emulator: kernel %s is defined twice (%s:%d and %s:%d); kernel names must be unique across .metal files", name, o.file, o.line, file, int(k.line))
			}
			maxT := MaxThreads
			if m := int(k.max_threads); m > 0 && m < maxT {
				maxT = m
			}
			d.kernels[name] = &kernel{c: k, name: name, file: file, line: int(k.line), nbuf: int(k.nbuf), argsSize: int(k.args_size), blocking: k.blocking != 0, maxThreads: maxT}
		}
	}
	order := o.Order
	if order == "" {
		order = os.Getenv("LATENTAD_EMU_ORDER")
	}
	switch order {
	case "", "forward":
		d.order = C.EMU_ORDER_FORWARD
	case "reverse":
		d.order = C.EMU_ORDER_REVERSE
	case "shuffle":
		d.order = C.EMU_ORDER_SHUFFLE
	default:
		return nil, fmt.Errorf("msl-emulator: thread order %q (LATENTAD_EMU_ORDER) is not forward, reverse or shuffle", order)
	}
	d.seed = o.Seed
	if d.seed == 0 {
		d.seed = 1
		if s := os.Getenv("LATENTAD_EMU_SEED"); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("msl-emulator: LATENTAD_EMU_SEED=%q is not an unsigned integer", s)
			}
			d.seed = v
		}
	}
	d.workers = o.Workers
	if d.workers <= 0 {
		d.workers = runtime.GOMAXPROCS(0)
	}
	return d, nil
}

type emuDriver struct {
	mu      sync.Mutex
	kernels map[string]*kernel
	order   C.int32_t
	seed    uint64
	workers int
	err     error // first fault since the last Wait
	args    unsafe.Pointer
	argsCap int
	bufs    unsafe.Pointer // C array of void*
	bufsCap int
	closed  bool
}

type kernel struct {
	c          *C.emu_kernel
	name       string
	file       string
	line       int
	nbuf       int
	argsSize   int
	blocking   bool
	maxThreads int
}

func (k *kernel) Name() string    { return k.name }
func (k *kernel) MaxThreads() int { return k.maxThreads }

func (d *emuDriver) Name() string { return "msl-emulator" }

// buffer is emulator device memory: anonymous mmap outside the Go heap, with the data placed
// so that it ends at an inaccessible guard page. A kernel that writes (or reads) past the end
// of a buffer therefore dies with SIGSEGV at the faulting instruction: a crash inside
// emulator C++ code during a test means an out-of-bounds kernel, not an emulator bug.
type buffer struct {
	mem  []byte // the whole mapping
	off  int    // where the data starts
	size int
}

func (b *buffer) Contents() unsafe.Pointer {
	if b.mem == nil {
		return nil
	}
	return unsafe.Pointer(&b.mem[b.off])
}
func (b *buffer) Len() int { return b.size }
func (b *buffer) Release() {
	if b.mem != nil {
		_ = syscall.Munmap(b.mem)
		b.mem = nil
	}
}

func (d *emuDriver) NewBuffer(size int) (driver.Buffer, error) {
	if size < 0 {
		return nil, fmt.Errorf("msl-emulator: buffer size %d is negative", size)
	}
	page := syscall.Getpagesize()
	// Round the data up to 16 bytes so every buffer is 16-byte aligned for float4 access; an
	// overrun of fewer than 16-(size%16) bytes past an odd-sized buffer is not caught.
	padded := (size + 15) &^ 15
	dataPages := (padded + page - 1) / page
	mem, err := syscall.Mmap(-1, 0, (dataPages+1)*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("msl-emulator: cannot map a %d-byte buffer: %w", size, err)
	}
	if err := syscall.Mprotect(mem[dataPages*page:], syscall.PROT_NONE); err != nil {
		_ = syscall.Munmap(mem)
		return nil, fmt.Errorf("msl-emulator: cannot protect the guard page of a %d-byte buffer: %w", size, err)
	}
	return &buffer{mem: mem, off: dataPages*page - padded, size: size}, nil
}

func (d *emuDriver) Kernel(name string) (driver.Kernel, error) {
	k, ok := d.kernels[name]
	if !ok {
		var near []string
		for n := range d.kernels {
			if strings.Contains(n, name) || strings.Contains(name, n) {
				near = append(near, n)
			}
		}
		sort.Strings(near)
		hint := ""
		if len(near) > 0 {
			hint = "; similar: " + strings.Join(near, ", ")
		}
		return nil, fmt.Errorf("msl-emulator: no kernel named %q among %d generated kernels (after adding a kernel to a .metal file, run go generate ./metal/emu/)%s", name, len(d.kernels), hint)
	}
	return k, nil
}

func (d *emuDriver) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Dispatch runs the kernel at once (so Wait only reports); after a fault, later dispatches are
// skipped until Wait, as a failed command buffer would skip them.
func (d *emuDriver) Dispatch(kk driver.Kernel, args []byte, bufs []driver.Ref, groups, threads [3]int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return
	}
	if d.closed {
		d.fail(fmt.Errorf("msl-emulator: Dispatch after Close"))
		return
	}
	k, ok := kk.(*kernel)
	if !ok || d.kernels[k.name] != k {
		d.fail(fmt.Errorf("msl-emulator: Dispatch of a kernel not obtained from this driver (%T)", kk))
		return
	}
	nt := 1
	for i, t := range threads {
		if t < 1 {
			d.fail(fmt.Errorf("msl-emulator: kernel %s: threads per threadgroup %v has a dimension < 1", k.name, threads))
			return
		}
		nt *= t
		if groups[i] < 0 {
			d.fail(fmt.Errorf("msl-emulator: kernel %s: negative threadgroup count %v", k.name, groups))
			return
		}
		if groups[i] > 1<<31 {
			d.fail(fmt.Errorf("msl-emulator: kernel %s: threadgroup count %v too large", k.name, groups))
			return
		}
	}
	if nt > k.maxThreads {
		d.fail(fmt.Errorf("msl-emulator: kernel %s: threadgroup of %v = %d threads exceeds its MaxThreads %d", k.name, threads, nt, k.maxThreads))
		return
	}
	if k.argsSize >= 0 && len(args) != k.argsSize {
		d.fail(fmt.Errorf("msl-emulator: kernel %s (%s:%d): argument struct is %d bytes, the kernel's buffer(0) type is %d bytes; the Go and MSL structs disagree", k.name, k.file, k.line, len(args), k.argsSize))
		return
	}
	if len(bufs)+1 < k.nbuf {
		d.fail(fmt.Errorf("msl-emulator: kernel %s (%s:%d) uses buffer(%d) but Dispatch bound buffers 1..%d", k.name, k.file, k.line, k.nbuf-1, len(bufs)))
		return
	}
	total := groups[0] * groups[1] * groups[2]
	if total == 0 {
		return
	}
	// Arguments and buffer pointers live in C memory, so C never holds a Go pointer.
	if d.argsCap < len(args) || d.args == nil {
		if d.args != nil {
			C.free(d.args)
		}
		d.argsCap = max(len(args), 256)
		d.args = C.malloc(C.size_t(d.argsCap))
	}
	if len(args) > 0 {
		copy(unsafe.Slice((*byte)(d.args), len(args)), args)
	}
	nb := len(bufs) + 1
	if d.bufsCap < nb || d.bufs == nil {
		if d.bufs != nil {
			C.free(d.bufs)
		}
		d.bufsCap = max(nb, 16)
		d.bufs = C.malloc(C.size_t(d.bufsCap) * C.size_t(unsafe.Sizeof(uintptr(0))))
	}
	ptrs := unsafe.Slice((*unsafe.Pointer)(d.bufs), nb)
	ptrs[0] = d.args
	for i, r := range bufs {
		ptrs[i+1] = nil
		if r.Buf == nil {
			continue
		}
		b, ok := r.Buf.(*buffer)
		if !ok {
			d.fail(fmt.Errorf("msl-emulator: kernel %s: buffer %d is a %T, not an emulator buffer", k.name, i+1, r.Buf))
			return
		}
		if b.mem == nil {
			d.fail(fmt.Errorf("msl-emulator: kernel %s: buffer %d was released", k.name, i+1))
			return
		}
		if r.Offset < 0 || r.Offset > b.size {
			d.fail(fmt.Errorf("msl-emulator: kernel %s: buffer %d offset %d outside its %d bytes", k.name, i+1, r.Offset, b.size))
			return
		}
		ptrs[i+1] = unsafe.Add(b.Contents(), r.Offset)
	}
	var desc C.emu_dispatch
	desc.groups = C.emu_u3{C.uint32_t(groups[0]), C.uint32_t(groups[1]), C.uint32_t(groups[2])}
	desc.threads = C.emu_u3{C.uint32_t(threads[0]), C.uint32_t(threads[1]), C.uint32_t(threads[2])}
	desc.order = d.order
	desc.seed = C.uint64_t(d.seed)
	if err := d.run(k, &desc, total); err != nil {
		d.fail(err)
	}
}

// run spreads the threadgroups over the workers in chunks taken from a shared counter.
func (d *emuDriver) run(k *kernel, desc *C.emu_dispatch, total int) error {
	bufs := (*unsafe.Pointer)(d.bufs)
	workers := min(d.workers, total)
	if workers <= 1 {
		return cErr(C.emu_run(k.c, bufs, desc, 0, C.uint64_t(total)))
	}
	// Several chunks per worker balance uneven groups; not so small that cgo calls dominate.
	chunk := max(1, total/(workers*8))
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(int64(chunk))) - chunk
				if lo >= total {
					return
				}
				hi := min(lo+chunk, total)
				if err := cErr(C.emu_run(k.c, bufs, desc, C.uint64_t(lo), C.uint64_t(hi))); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(total)) // stop the others soon
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func cErr(p *C.char) error {
	if p == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(p))
	return fmt.Errorf("msl-emulator: %s", C.GoString(p))
}

func (d *emuDriver) Wait() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.err
	d.err = nil
	return err
}

func (d *emuDriver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	if d.args != nil {
		C.free(d.args)
		d.args = nil
	}
	if d.bufs != nil {
		C.free(d.bufs)
		d.bufs = nil
	}
}
