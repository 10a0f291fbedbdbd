//go:build !unix

package kern

func cpuSeconds() float64 { return 0 }
