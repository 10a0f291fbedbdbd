package kern

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMicroKernel measures each kernel set's full-height micro-kernel on
// cache-resident panels: the ceiling the GEMM driver can approach.
func BenchmarkMicroKernel(b *testing.B) {
	for _, set := range availableKernels() {
		b.Run(set.name, func(b *testing.B) {
			const kc = kcBlock
			r := rand.New(rand.NewPCG(9, 0))
			a := randSlice(r, kc*set.mr)
			bb := randSlice(r, kc*set.nr)
			c := make([]float32, set.mr*set.nr)
			cpu0 := cpuSeconds()
			for b.Loop() {
				set.micro(set.mr, kc, a, bb, c, set.nr, true)
			}
			reportFlops(b, 2*float64(kc*set.mr*set.nr), cpuSeconds()-cpu0)
		})
	}
}

// BenchmarkDotKernel measures the weight-gradient dot kernels on cache-resident rows.
func BenchmarkDotKernel(b *testing.B) {
	for _, set := range availableKernels() {
		if set.dot == nil {
			continue
		}
		b.Run(set.name, func(b *testing.B) {
			kv := 1024 / set.dvec
			r := rand.New(rand.NewPCG(9, 1))
			a := randSlice(r, set.dmr*1024)
			bb := randSlice(r, set.dnr*1024)
			c := make([]float32, set.dmr*set.dnr)
			cpu0 := cpuSeconds()
			for b.Loop() {
				set.dot(kv, a, 1024, bb, 1024, c, set.dnr)
			}
			reportFlops(b, 2*float64(1024*set.dmr*set.dnr), cpuSeconds()-cpu0)
		})
	}
}
