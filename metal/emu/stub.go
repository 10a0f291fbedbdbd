//go:build !(linux && cgo)

package emu

import (
	"errors"
	"unsafe"

	"github.com/latentad/latentad/metal/driver"
)

// MaxThreads is the largest threadgroup the emulator accepts, as on Apple GPUs.
const MaxThreads = 1024

// Options configure an emulator driver (see the linux && cgo build).
type Options struct {
	Tables  []unsafe.Pointer
	Order   string
	Seed    uint64
	Workers int
}

// ErrUnavailable is returned where the emulator cannot run: it needs Linux, cgo and g++.
var ErrUnavailable = errors.New("msl-emulator unavailable: it needs linux with cgo (CGO_ENABLED=1) and g++")

// New reports that the emulator is unavailable on this platform.
func New() (driver.Driver, error) { return nil, ErrUnavailable }

// NewWith reports that the emulator is unavailable on this platform.
func NewWith(Options) (driver.Driver, error) { return nil, ErrUnavailable }
