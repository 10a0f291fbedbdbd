//go:build !darwin

package metal

import (
	"fmt"
	"runtime"

	"github.com/latentad/latentad/compute"
)

// Open returns the Metal device of this machine. Metal exists only on macOS.
func Open() (compute.Device, error) {
	return nil, fmt.Errorf("Metal is not available on this machine (%s/%s); use --device cpu", runtime.GOOS, runtime.GOARCH)
}
