//go:build !darwin || !cgo

package metal

import (
	"fmt"
	"runtime"

	"github.com/latentad/latentad/compute"
)

// Open returns the Metal device of this machine. Metal exists only on macOS, and the
// driver needs cgo.
func Open() (compute.Device, error) {
	if runtime.GOOS == "darwin" {
		return nil, fmt.Errorf("Metal support is not built into this binary (built with CGO_ENABLED=0); rebuild with CGO_ENABLED=1 or use --device cpu")
	}
	return nil, fmt.Errorf("Metal is not available on this machine (%s/%s); use --device cpu", runtime.GOOS, runtime.GOARCH)
}
