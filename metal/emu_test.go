package metal

import (
	"testing"

	"github.com/latentad/latentad/metal/driver"
	"github.com/latentad/latentad/metal/emu"
)

// newDriver returns the machine's GPU driver where there is one (macOS), else the MSL
// emulator (Linux with cgo); without either the test is skipped.
func newDriver(t testing.TB) driver.Driver {
	t.Helper()
	drv, err := gpuDriver()
	if err != nil {
		if drv, err = emu.New(); err != nil {
			t.Skipf("neither a GPU nor the MSL emulator is available: %v", err)
		}
	}
	t.Cleanup(drv.Close)
	return drv
}
