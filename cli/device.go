package cli

import (
	"sync"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/metal"
)

// openMetal opens the GPU backend, once: compiling the shaders takes a moment, and every
// command of a run (the demo runs several) shares the device.
var openMetal = sync.OnceValues(metal.Open)

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
