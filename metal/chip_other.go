//go:build !darwin

package metal

// gpuCores is unknown off macOS.
func gpuCores() int { return 0 }
