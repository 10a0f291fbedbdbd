//go:build darwin && cgo

package metal

import (
	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/metal/mtl"
)

// Open returns the Metal device of this Mac, with the shaders compiled.
func Open() (compute.Device, error) {
	drv, err := mtl.New()
	if err != nil {
		return nil, err
	}
	return New(drv), nil
}
