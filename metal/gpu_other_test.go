//go:build !darwin || !cgo

package metal

import (
	"errors"

	"github.com/latentad/latentad/metal/driver"
)

func gpuDriver() (driver.Driver, error) { return nil, errors.New("no Metal GPU off macOS") }
