package compute

import "fmt"

// Array is a float32 array in host memory: what checkpoints, latents files and state dicts
// hold. Data is row-major (C order) in Shape.
type Array struct {
	Shape []int
	Data  []float32
}

// NewArray returns a zero-filled Array.
func NewArray(shape ...int) Array {
	return Array{Shape: append([]int(nil), shape...), Data: make([]float32, Numel(shape))}
}

// Check reports an Array whose data length does not match its shape.
func (a Array) Check() error {
	if len(a.Data) != Numel(a.Shape) {
		return fmt.Errorf("array of shape %v holds %d values, want %d", a.Shape, len(a.Data), Numel(a.Shape))
	}
	return nil
}
