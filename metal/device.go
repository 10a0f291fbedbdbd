package metal

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/metal/driver"
)

// ConvVariant selects the convolution kernels.
type ConvVariant int

const (
	ConvAuto   ConvVariant = iota // pick by shape
	ConvDirect                    // one thread per output, a plain loop (always correct, slow)
	ConvTiled                     // 64×64 threadgroup tiles in threadgroup memory
	ConvSimd                      // 32×32 tiles on simdgroup_float8x8
)

func (v ConvVariant) String() string {
	switch v {
	case ConvAuto:
		return "auto"
	case ConvDirect:
		return "direct"
	case ConvTiled:
		return "tiled"
	case ConvSimd:
		return "simd"
	}
	return fmt.Sprintf("ConvVariant(%d)", int(v))
}

// Options tune a Device; the zero value is what users get.
type Options struct {
	// Conv forces a convolution variant (tests use it to cover every kernel).
	Conv ConvVariant
	// Splits, when positive, forces the number of reduction splits of the weight gradient.
	Splits int
}

// GPUTimer is implemented by drivers that can time the GPU work of their last Wait (the
// darwin driver, from the command buffer's GPUStartTime/GPUEndTime).
type GPUTimer interface {
	LastGPUTime() (seconds float64, ok bool)
}

// buffer is this backend's tensor storage: a driver buffer of a pool bucket's size, of
// which the first n float32 values belong to the tensor that allocated it.
type buffer struct {
	b        driver.Buffer
	n        int
	released bool
}

// Device is the Metal compute.Device.
type Device struct {
	drv     driver.Driver
	opts    Options
	kernels map[string]driver.Kernel

	// free holds released buffers that no queued work uses: the host may write them.
	// limbo holds buffers released while work was queued: reusable only through queued
	// (GPU-ordered) writes until the next wait moves them to free.
	free  map[int][]driver.Buffer
	limbo map[int][]driver.Buffer
	// staged are upload staging buffers that return to free after the next wait.
	staged []driver.Buffer

	queued int   // dispatches since the last wait
	err    error // first fault reported by the driver, sticky
	dummy  driver.Buffer
}

var _ compute.Device = (*Device)(nil)

// New returns a Device over drv.
func New(drv driver.Driver, opts ...Options) *Device {
	d := &Device{
		drv:     drv,
		kernels: map[string]driver.Kernel{},
		free:    map[int][]driver.Buffer{},
		limbo:   map[int][]driver.Buffer{},
	}
	if len(opts) > 0 {
		d.opts = opts[0]
	}
	return d
}

// Name implements compute.Device.
func (d *Device) Name() string { return "metal (" + d.drv.Name() + ")" }

// Driver returns the driver the device runs on.
func (d *Device) Driver() driver.Driver { return d.drv }

// GPUTime reports the GPU time of the work completed by the last wait, when the driver can
// measure it.
func (d *Device) GPUTime() (float64, bool) {
	if t, ok := d.drv.(GPUTimer); ok {
		return t.LastGPUTime()
	}
	return 0, false
}

// Close waits for queued work, frees every pooled buffer and closes the driver. Tensors
// still allocated must not be used afterwards.
func (d *Device) Close() error {
	err := d.Sync()
	d.Trim()
	if d.dummy != nil {
		d.dummy.Release()
		d.dummy = nil
	}
	d.drv.Close()
	return err
}

// Trim waits for queued work and frees the pooled (released, unused) buffers.
func (d *Device) Trim() {
	d.wait()
	for _, bs := range d.free {
		for _, b := range bs {
			b.Release()
		}
	}
	clear(d.free)
}

// bucket rounds a byte size up to one of 8 steps per power of two (at most 12.5% waste),
// at least 256 bytes, so released buffers fit later requests of similar size.
func bucket(size int) int {
	if size <= 256 {
		return 256
	}
	shift := bits.Len(uint(size-1)) - 4 // 8 steps: keep the top 4 bits
	step := 1 << shift
	return (size + step - 1) &^ (step - 1)
}

// getBuffer returns a buffer of at least size bytes. hostWrite asks for one the host may
// write at once (nothing queued uses it); zero asks for zero-filled contents.
func (d *Device) getBuffer(size int, hostWrite, zero bool) driver.Buffer {
	bk := bucket(size)
	if l := d.free[bk]; len(l) > 0 {
		b := l[len(l)-1]
		d.free[bk] = l[:len(l)-1]
		if zero {
			if d.queued == 0 {
				clear(unsafe.Slice((*byte)(b.Contents()), b.Len()))
			} else {
				d.fillRaw(b, bk/4, 0)
			}
		}
		return b
	}
	if l := d.limbo[bk]; !hostWrite && len(l) > 0 {
		b := l[len(l)-1]
		d.limbo[bk] = l[:len(l)-1]
		if zero {
			d.fillRaw(b, bk/4, 0)
		}
		return b
	}
	b, err := d.drv.NewBuffer(bk)
	if err != nil {
		// Out of device memory: give back what the pool holds and try once more.
		d.Trim()
		b, err = d.drv.NewBuffer(bk)
		if err != nil {
			panic(fmt.Sprintf("metal: cannot allocate a buffer of %d bytes on %s: %v (use a smaller batch or --device cpu)", bk, d.drv.Name(), err))
		}
	}
	return b
}

// putBuffer returns b to the pool.
func (d *Device) putBuffer(b driver.Buffer) {
	if d.queued > 0 {
		d.limbo[b.Len()] = append(d.limbo[b.Len()], b)
	} else {
		d.free[b.Len()] = append(d.free[b.Len()], b)
	}
}

// wait submits queued work and waits for it; it then recycles what the work held.
func (d *Device) wait() {
	if d.queued > 0 {
		if err := d.drv.Wait(); err != nil && d.err == nil {
			d.err = err
		}
		d.queued = 0
	}
	for bk, l := range d.limbo {
		d.free[bk] = append(d.free[bk], l...)
	}
	clear(d.limbo)
	for _, b := range d.staged {
		d.free[b.Len()] = append(d.free[b.Len()], b)
	}
	d.staged = d.staged[:0]
}

// Alloc implements compute.Device.
func (d *Device) Alloc(shape ...int) *compute.Tensor {
	n := compute.Numel(shape)
	if n < 0 || n > math.MaxUint32/4 {
		panic(fmt.Sprintf("metal: tensor of shape %v is too large (%d elements; kernels index with 32 bits)", shape, n))
	}
	b := d.getBuffer(4*n, false, true)
	return compute.NewTensor(d, &buffer{b: b, n: n}, 0, shape)
}

// Release implements compute.Device.
func (d *Device) Release(t *compute.Tensor) {
	if t == nil {
		return
	}
	buf := d.buf(t)
	if t.Offset() != 0 || t.Len() != buf.n || buf.released {
		return // a view, or already released
	}
	buf.released = true
	d.putBuffer(buf.b)
	buf.b = nil
}

// buf returns t's storage, checking that t belongs to this device.
func (d *Device) buf(t *compute.Tensor) *buffer {
	if t.Device() != compute.Device(d) {
		panic(fmt.Sprintf("metal: tensor %v belongs to another device than %s", t.Shape(), d.Name()))
	}
	b, ok := t.Buffer().(*buffer)
	if !ok {
		panic(fmt.Sprintf("metal: tensor %v has a foreign buffer %T", t.Shape(), t.Buffer()))
	}
	if b.released {
		panic(fmt.Sprintf("metal: tensor %v used after Release", t.Shape()))
	}
	return b
}

// ref binds t at its first element.
func (d *Device) ref(t *compute.Tensor) driver.Ref {
	return driver.Ref{Buf: d.buf(t).b, Offset: 4 * t.Offset()}
}

// hostSlice is the host view of t's elements; valid only when no queued work uses t.
func (d *Device) hostSlice(t *compute.Tensor) []float32 {
	b := d.buf(t)
	if t.Len() == 0 {
		return nil
	}
	all := unsafe.Slice((*float32)(b.b.Contents()), b.b.Len()/4)
	return all[t.Offset() : t.Offset()+t.Len()]
}

// Upload implements compute.Device.
func (d *Device) Upload(t *compute.Tensor, src []float32) {
	if len(src) != t.Len() {
		panic(fmt.Sprintf("metal: Upload of %d values into a tensor of shape %v", len(src), t.Shape()))
	}
	if len(src) == 0 {
		return
	}
	if d.queued == 0 {
		copy(d.hostSlice(t), src)
		return
	}
	// Queued work may still read t: stage the data and let the queue copy it in order.
	st := d.getBuffer(4*len(src), true, false)
	copy(unsafe.Slice((*float32)(st.Contents()), len(src)), src)
	d.staged = append(d.staged, st)
	d.dispatch1D("copy_buffer", words(u32(len(src))), len(src),
		driver.Ref{Buf: st}, d.ref(t))
}

// Download implements compute.Device. After a GPU fault dst is filled with NaN and Sync
// reports the fault.
func (d *Device) Download(t *compute.Tensor, dst []float32) {
	if len(dst) != t.Len() {
		panic(fmt.Sprintf("metal: Download of a tensor of shape %v into %d values", t.Shape(), len(dst)))
	}
	d.wait()
	if d.err != nil {
		nan := float32(math.NaN())
		for i := range dst {
			dst[i] = nan
		}
		return
	}
	copy(dst, d.hostSlice(t))
}

// Sync implements compute.Device.
func (d *Device) Sync() error {
	d.wait()
	return d.err
}

// kernel returns the named pipeline, compiled once.
func (d *Device) kernel(name string) driver.Kernel {
	if k, ok := d.kernels[name]; ok {
		return k
	}
	k, err := d.drv.Kernel(name)
	if err != nil {
		panic(fmt.Sprintf("metal: kernel %s: %v", name, err))
	}
	d.kernels[name] = k
	return k
}

// dispatch queues a kernel; empty grids are skipped.
func (d *Device) dispatch(name string, args []byte, groups, threads [3]int, bufs ...driver.Ref) {
	if groups[0] == 0 || groups[1] == 0 || groups[2] == 0 {
		return
	}
	k := d.kernel(name)
	if t := threads[0] * threads[1] * threads[2]; t > k.MaxThreads() {
		panic(fmt.Sprintf("metal: kernel %s takes at most %d threads per threadgroup, asked for %d", name, k.MaxThreads(), t))
	}
	d.drv.Dispatch(k, args, bufs, groups, threads)
	d.queued++
}

const elemThreads = 256 // threads per threadgroup of one-thread-per-element kernels

// dispatch1D queues one thread per element of n.
func (d *Device) dispatch1D(name string, args []byte, n int, bufs ...driver.Ref) {
	d.dispatch(name, args, [3]int{ceilDiv(n, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1}, bufs...)
}

// fillRaw queues a fill of n floats of b with v.
func (d *Device) fillRaw(b driver.Buffer, n int, v float32) {
	d.dispatch1D("fill_buffer", words(u32(n), f32(v)), n, driver.Ref{Buf: b})
}

// dummyRef is a small buffer bound where a kernel ignores an argument (a nil bias).
func (d *Device) dummyRef() driver.Ref {
	if d.dummy == nil {
		b, err := d.drv.NewBuffer(256)
		if err != nil {
			panic(fmt.Sprintf("metal: cannot allocate 256 bytes on %s: %v", d.drv.Name(), err))
		}
		d.dummy = b
	}
	return driver.Ref{Buf: d.dummy}
}

// words packs a kernel's argument struct: every field is a 32-bit uint or float, so the
// struct is the words in order with no padding.
func words(ws ...uint32) []byte {
	out := make([]byte, 4*len(ws))
	for i, w := range ws {
		out[4*i] = byte(w)
		out[4*i+1] = byte(w >> 8)
		out[4*i+2] = byte(w >> 16)
		out[4*i+3] = byte(w >> 24)
	}
	return out
}

// u32 converts a size to a kernel argument; sizes beyond 32 bits are a programming error
// (Alloc refuses such tensors).
func u32(n int) uint32 {
	if n < 0 || n > math.MaxUint32 {
		panic(fmt.Sprintf("metal: size %d does not fit a 32-bit kernel argument", n))
	}
	return uint32(n)
}

func f32(v float32) uint32 { return math.Float32bits(v) }

func b32(v bool) uint32 {
	if v {
		return 1
	}
	return 0
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// checkLen panics unless every tensor has n elements.
func checkLen(op string, n int, ts ...*compute.Tensor) {
	for _, t := range ts {
		if t.Len() != n {
			panic(fmt.Sprintf("metal: %s: tensor of shape %v has %d elements, want %d", op, t.Shape(), t.Len(), n))
		}
	}
}

// checkShape panics unless t has the shape want.
func checkShape(op, what string, t *compute.Tensor, want ...int) {
	if !slices.Equal(t.Shape(), want) {
		panic(fmt.Sprintf("metal: %s: %s has shape %v, want %v", op, what, t.Shape(), want))
	}
}
