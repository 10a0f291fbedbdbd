//go:build darwin

package metal

import (
	"context"
	"os/exec"
	"sync"
	"time"
)

var cores struct {
	once sync.Once
	n    int
}

// gpuCores asks the IO registry for the GPU core count (Metal has no API for it); 0 when
// ioreg is missing or says nothing.
func gpuCores() int {
	cores.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ioreg", "-r", "-c", "AGXAccelerator", "-d", "1").Output()
		if err == nil {
			cores.n = parseGPUCores(string(out))
		}
	})
	return cores.n
}
