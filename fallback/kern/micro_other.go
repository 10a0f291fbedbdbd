//go:build purego || !(amd64 || arm64)

package kern

func bestKernels() kernelSet { return goKernels }

// availableKernels lists the kernel sets this build and CPU can run.
func availableKernels() []kernelSet { return []kernelSet{goKernels} }
