package cli

import (
	"fmt"
	"runtime"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
)

// openMetal opens the GPU backend; metal.go sets it where the backend is built in.
var openMetal = func() (compute.Device, error) {
	return nil, fmt.Errorf("Metal is not available on this machine (%s/%s); use --device cpu", runtime.GOOS, runtime.GOARCH)
}

func deviceFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "device", Value: "auto", Usage: "where to compute: auto (Metal where it exists, else CPU), cpu or metal"}
}

// openDevice resolves --device.
func openDevice(name string) (compute.Device, error) {
	switch name {
	case "cpu":
		return fallback.New(), nil
	case "metal":
		d, err := openMetal()
		if err != nil {
			return nil, usageError("--device metal: %v", err)
		}
		return d, nil
	case "auto", "":
		if d, err := openMetal(); err == nil {
			return d, nil
		}
		return fallback.New(), nil
	}
	return nil, usageError("--device %q: want auto, cpu or metal", name)
}
