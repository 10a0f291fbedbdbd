//go:build darwin

package mtl

/*
#cgo CFLAGS: -x objective-c
#cgo LDFLAGS: -framework Metal -framework CoreGraphics -framework Foundation
#import <Metal/Metal.h>

// latentad_default_device returns a retained MTLDevice: the system default, or for
// command-line tools without one the first of all devices; NULL when there is none.
static void* latentad_default_device(void) {
	id<MTLDevice> d = MTLCreateSystemDefaultDevice();
	if (d != nil) {
		return (void*)d;
	}
	NSArray<id<MTLDevice>>* all = MTLCopyAllDevices();
	if (all == nil) {
		return NULL;
	}
	void* first = NULL;
	if (all.count > 0) {
		first = (void*)[all[0] retain];
	}
	[all release];
	return first;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/progrium/darwinkit/macos/foundation"
	"github.com/progrium/darwinkit/macos/metal"
	"github.com/progrium/darwinkit/objc"

	"github.com/latentad/latentad/metal/driver"
	"github.com/latentad/latentad/shaders"
)

// Selectors sent through objc.Call because darwinkit v0.5.0's generated wrappers panic on
// protocol-typed arguments (objc.WrapAsProtocol on a concrete struct).
var (
	selNewPipeline = objc.Sel("newComputePipelineStateWithFunction:error:")
	selSetPipeline = objc.Sel("setComputePipelineState:")
	selSetBuffer   = objc.Sel("setBuffer:offset:atIndex:")
)

// Driver runs kernels on the machine's Metal GPU.
type Driver struct {
	dev     metal.DeviceObject
	lib     metal.LibraryObject
	queue   metal.CommandQueueObject
	name    string
	kernels map[string]*kernel

	// The open command buffer and its compute encoder (both retained), from the first
	// Dispatch after a flush; count is how many dispatches it holds.
	cb    metal.CommandBufferObject
	enc   metal.ComputeCommandEncoderObject
	count int
	// inflight are committed command buffers (retained) not yet waited for.
	inflight []metal.CommandBufferObject

	gpuTime float64
	gpuOK   bool
}

type kernel struct {
	name string
	fn   metal.FunctionObject
	pso  metal.ComputePipelineStateObject
	max  int
}

func (k *kernel) Name() string    { return k.name }
func (k *kernel) MaxThreads() int { return k.max }

type buffer struct {
	b    metal.BufferObject
	ptr  unsafe.Pointer
	size int
}

func (b *buffer) Contents() unsafe.Pointer { return b.ptr }
func (b *buffer) Len() int                 { return b.size }
func (b *buffer) Release() {
	if b.ptr != nil {
		b.b.Release()
		b.ptr = nil
	}
}

var _ driver.Driver = (*Driver)(nil)

// nsError turns an NSError out-parameter into a Go error.
func nsError(errp unsafe.Pointer) string {
	if errp == nil {
		return "unknown error"
	}
	return foundation.ErrorFrom(errp).LocalizedDescription()
}

// New opens the default GPU and compiles the shaders.
func New() (*Driver, error) {
	ptr := C.latentad_default_device()
	if ptr == nil {
		return nil, errors.New("no Metal device found on this Mac; use --device cpu")
	}
	d := &Driver{
		dev:     metal.DeviceObject{Object: objc.ObjectFrom(ptr)},
		kernels: map[string]*kernel{},
	}
	var err error
	objc.WithAutoreleasePool(func() {
		d.name = d.dev.Name()
		// Default options: the newest language version the OS supports (the shaders need
		// MSL 2.3 for simdgroup_matrix, i.e. macOS 11 on Apple silicon) and fast math.
		opts := metal.NewCompileOptions()
		var errp unsafe.Pointer
		d.lib = d.dev.NewLibraryWithSourceOptionsError(shaders.Source(), opts, unsafe.Pointer(&errp))
		if d.lib.IsNil() {
			err = fmt.Errorf("compiling the Metal shaders on %s: %s", d.name, nsError(errp))
			return
		}
		d.queue = d.dev.NewCommandQueue()
		if d.queue.IsNil() {
			err = fmt.Errorf("creating a command queue on %s failed", d.name)
		}
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return d.name }

// NewBuffer implements driver.Driver: shared storage, so the host reads and writes it
// directly; Metal zero-fills new buffers.
func (d *Driver) NewBuffer(size int) (driver.Buffer, error) {
	if size <= 0 {
		size = 4
	}
	b := d.dev.NewBufferWithLengthOptions(uint(size), metal.ResourceStorageModeShared)
	if b.IsNil() {
		return nil, fmt.Errorf("%s could not allocate %d bytes", d.name, size)
	}
	return &buffer{b: b, ptr: b.Contents(), size: size}, nil
}

// Kernel implements driver.Driver.
func (d *Driver) Kernel(name string) (driver.Kernel, error) {
	if k, ok := d.kernels[name]; ok {
		return k, nil
	}
	var k *kernel
	var err error
	objc.WithAutoreleasePool(func() {
		fn := d.lib.NewFunctionWithName(name)
		if fn.IsNil() {
			err = fmt.Errorf("kernel %q is not in the shaders library", name)
			return
		}
		var errp unsafe.Pointer
		pso := objc.Call[metal.ComputePipelineStateObject](d.dev, selNewPipeline, fn, unsafe.Pointer(&errp))
		if pso.IsNil() {
			fn.Release()
			err = fmt.Errorf("building the pipeline of kernel %q on %s: %s", name, d.name, nsError(errp))
			return
		}
		k = &kernel{name: name, fn: fn, pso: pso, max: int(pso.MaxTotalThreadsPerThreadgroup())}
	})
	if err != nil {
		return nil, err
	}
	d.kernels[name] = k
	return k, nil
}

// commitEvery is how many dispatches one command buffer holds before it is committed
// without waiting: the GPU starts on a long pass while the host still encodes the rest, and
// no single command buffer runs long enough to meet the GPU watchdog.
const commitEvery = 256

// begin opens a command buffer and encoder, retained past the autorelease pool.
func (d *Driver) begin() {
	if !d.cb.IsNil() {
		return
	}
	objc.WithAutoreleasePool(func() {
		d.cb = d.queue.CommandBuffer()
		d.cb.Retain()
		d.enc = d.cb.ComputeCommandEncoder()
		d.enc.Retain()
	})
}

// Dispatch implements driver.Driver. It only encodes; the GPU starts at Wait.
func (d *Driver) Dispatch(k driver.Kernel, args []byte, bufs []driver.Ref, groups, threads [3]int) {
	kk := k.(*kernel)
	d.begin()
	objc.Call[objc.Void](d.enc, selSetPipeline, kk.pso)
	if len(args) > 0 {
		d.enc.SetBytesLengthAtIndex(unsafe.Pointer(&args[0]), uint(len(args)), 0)
	}
	for i, r := range bufs {
		b := r.Buf.(*buffer)
		objc.Call[objc.Void](d.enc, selSetBuffer, b.b, uint(r.Offset), uint(i+1))
	}
	d.enc.DispatchThreadgroupsThreadsPerThreadgroup(
		metal.Size{Width: uint64(groups[0]), Height: uint64(groups[1]), Depth: uint64(groups[2])},
		metal.Size{Width: uint64(threads[0]), Height: uint64(threads[1]), Depth: uint64(threads[2])})
	if d.count++; d.count >= commitEvery {
		d.flush()
	}
}

// flush ends the open encoder and commits its command buffer without waiting. Command
// buffers of one queue run in commit order, so the ordering of dispatches is kept.
func (d *Driver) flush() {
	if d.cb.IsNil() {
		return
	}
	objc.WithAutoreleasePool(func() {
		metal.CommandEncoderObject{Object: d.enc.Object}.EndEncoding()
		d.cb.Commit()
		d.enc.Release()
	})
	d.inflight = append(d.inflight, d.cb)
	d.enc = metal.ComputeCommandEncoderObject{}
	d.cb = metal.CommandBufferObject{}
	d.count = 0
}

// Wait implements driver.Driver: it commits the open command buffer, waits for every
// committed one, releases them, and records their summed GPU time.
func (d *Driver) Wait() error {
	d.flush()
	if len(d.inflight) == 0 {
		return nil
	}
	var errs []error
	gpu := 0.0
	objc.WithAutoreleasePool(func() {
		for _, cb := range d.inflight {
			cb.WaitUntilCompleted()
			if cb.Status() == metal.CommandBufferStatusError {
				errs = append(errs, fmt.Errorf("GPU command buffer failed on %s: %s", d.name, cb.Error().LocalizedDescription()))
			} else {
				gpu += float64(cb.GPUEndTime() - cb.GPUStartTime())
			}
			cb.Release()
		}
	})
	d.inflight = d.inflight[:0]
	d.gpuTime, d.gpuOK = gpu, len(errs) == 0
	return errors.Join(errs...)
}

// LastGPUTime reports the GPU time, in seconds, of the batch the last Wait completed.
func (d *Driver) LastGPUTime() (float64, bool) { return d.gpuTime, d.gpuOK }

// Close implements driver.Driver.
func (d *Driver) Close() {
	_ = d.Wait()
	for _, k := range d.kernels {
		k.pso.Release()
		k.fn.Release()
	}
	clear(d.kernels)
	if !d.queue.IsNil() {
		d.queue.Release()
		d.queue = metal.CommandQueueObject{}
	}
	if !d.lib.IsNil() {
		d.lib.Release()
		d.lib = metal.LibraryObject{}
	}
	if !d.dev.IsNil() {
		d.dev.Release()
		d.dev = metal.DeviceObject{}
	}
}
