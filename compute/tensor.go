package compute

import (
	"fmt"
	"slices"
)

// Tensor is a dense float32 array on a Device: a shape, a backend-owned buffer and an
// element offset into it. Several tensors may share one buffer (views); the models keep
// all parameters in one buffer so that Adam is a single fused op.
type Tensor struct {
	shape []int
	off   int
	buf   any
	dev   Device
}

// NewTensor wraps a backend buffer. Only backends call it; users call Device.Alloc.
func NewTensor(dev Device, buf any, off int, shape []int) *Tensor {
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("compute: negative dimension in shape %v", shape))
		}
	}
	return &Tensor{shape: slices.Clone(shape), off: off, buf: buf, dev: dev}
}

// Shape returns the dimensions. The caller must not modify the slice.
func (t *Tensor) Shape() []int { return t.shape }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Len is the number of elements.
func (t *Tensor) Len() int { return Numel(t.shape) }

// Offset is the element offset of the tensor's first element in its buffer.
func (t *Tensor) Offset() int { return t.off }

// Buffer is the backend's storage; each backend asserts its own type.
func (t *Tensor) Buffer() any { return t.buf }

// Device is the device that owns the buffer.
func (t *Tensor) Device() Device { return t.dev }

// View returns a tensor over the same buffer starting off elements after t's start.
func (t *Tensor) View(off int, shape ...int) *Tensor {
	if off < 0 || off+Numel(shape) > t.Len() {
		panic(fmt.Sprintf("compute: view [%d, %d) out of a tensor of %d elements", off, off+Numel(shape), t.Len()))
	}
	return NewTensor(t.dev, t.buf, t.off+off, shape)
}

// Reshape returns a view of all of t with another shape of the same size.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	if Numel(shape) != t.Len() {
		panic(fmt.Sprintf("compute: cannot reshape %v to %v", t.shape, shape))
	}
	return NewTensor(t.dev, t.buf, t.off, shape)
}

// Sample returns the view of samples [from, to) along the first dimension.
func (t *Tensor) Sample(from, to int) *Tensor {
	per := t.Len() / max(t.shape[0], 1)
	shape := slices.Clone(t.shape)
	shape[0] = to - from
	return t.View(from*per, shape...)
}

func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v@%s", t.shape, t.dev.Name()) }

// Numel is the product of the dimensions.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// SameShape reports whether a and b have equal shapes.
func SameShape(a, b *Tensor) bool { return slices.Equal(a.shape, b.shape) }

// ToHost downloads a tensor into a new slice.
func ToHost(t *Tensor) []float32 {
	out := make([]float32, t.Len())
	t.dev.Download(t, out)
	return out
}

// FromHost allocates a tensor on dev and uploads data into it.
func FromHost(dev Device, data []float32, shape ...int) *Tensor {
	if len(data) != Numel(shape) {
		panic(fmt.Sprintf("compute: %d values for shape %v", len(data), shape))
	}
	t := dev.Alloc(shape...)
	dev.Upload(t, data)
	return t
}
