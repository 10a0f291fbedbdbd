//go:build !purego

package kern

// neonKernels is the arm64 set: NEON 6×16 micro-kernels (Advanced SIMD is part of every
// arm64 CPU, so there is nothing to detect) behind the Go packers and the Go Winograd
// transforms; the Winograd path is not chosen (its transforms are only fast in AVX-512).
var neonKernels = kernelSet{name: "neon", mr: len(neonTable), nr: 16, micro: kernelNEON, rows: packRowsGo,
	wgIn: wgInGo, wgDy: wgDyGo, wgT8: wgT8Go, wgFilt: wgFiltGo, wgOut: wgOutGo}

func bestKernels() kernelSet { return neonKernels }

// availableKernels lists the kernel sets this build and CPU can run.
func availableKernels() []kernelSet { return []kernelSet{goKernels, neonKernels} }

func kernelNEON(h, kc int, a, b, c []float32, ldc int, acc bool) {
	if kc == 0 { // nothing to read; C is 0 or itself
		if !acc {
			for i := range h {
				clear(c[i*ldc : i*ldc+16])
			}
		}
		return
	}
	// One bounds check per call; the assembly reads kc·mr / kc·nr values and writes h rows.
	_ = a[kc*len(neonTable)-1]
	_ = b[kc*16-1]
	_ = c[(h-1)*ldc+15]
	neonTable[h-1](kc, &a[0], &b[0], &c[0], ldc, acc)
}
