package metal

import (
	"testing"

	"github.com/latentad/latentad/compute/devicetest"
)

// TestConformance runs the whole compute/devicetest suite on the Metal backend over the
// MSL emulator, with the default (automatic) kernel choice.
func TestConformance(t *testing.T) {
	devicetest.Run(t, New(newDriver(t)))
}

// TestConformanceConvVariants repeats the suite with each convolution variant forced and
// the weight gradient split, so every conv kernel meets every conformance shape.
func TestConformanceConvVariants(t *testing.T) {
	drv := newDriver(t)
	for _, o := range []Options{{Conv: ConvDirect, Splits: 2}, {Conv: ConvTiled, Splits: 3}, {Conv: ConvSimd}} {
		t.Run(o.Conv.String(), func(t *testing.T) {
			devicetest.Run(t, New(drv, o))
		})
	}
}
