//go:build darwin && cgo

package metal

import (
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/metal/driver"
	"github.com/latentad/latentad/metal/mtl"
)

func gpuDriver() (driver.Driver, error) { return mtl.New() }

// TestOpenGPU opens the real device and checks the GPU timestamps of a batch of work,
// which `latentad bench --device metal` relies on.
func TestOpenGPU(t *testing.T) {
	d, err := Open()
	if err != nil {
		t.Fatalf("Open on a Mac: %v", err)
	}
	dev := d.(*Device)
	defer dev.Close()
	x := dev.Alloc(1 << 20)
	dev.Fill(x, 1)
	for i := 0; i < 10; i++ {
		dev.AXPY(0.5, x, x)
	}
	if got := compute.ToHost(x)[12345]; got != 1.5*1.5*1.5*1.5*1.5*1.5*1.5*1.5*1.5*1.5 {
		t.Errorf("x = %v after ten x += 0.5·x", got)
	}
	if s, ok := dev.GPUTime(); !ok || s <= 0 || s > 10 {
		t.Errorf("GPU time of the batch = %v, %v", s, ok)
	}
	t.Logf("%s: ten AXPYs over 4 MB took %.3f ms on the GPU", dev.Name(), 1e3*func() float64 { s, _ := dev.GPUTime(); return s }())
}
