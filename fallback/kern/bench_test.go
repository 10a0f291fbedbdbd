package kern

import (
	"flag"
	"math/rand/v2"
	"runtime"
	"testing"
)

// -kernels=go|avx2|avx512 runs the benchmarks with that kernel set instead of the best
// one, e.g. `go test -bench Conv3d ./fallback/kern -args -kernels=avx2` to see what an
// AVX2-only machine gets.
var kernelsFlag = flag.String("kernels", "", "kernel set for benchmarks (go, avx2, avx512; default: best available)")

func selectKernels(b *testing.B) {
	if *kernelsFlag == "" || *kernelsFlag == ks.name {
		return
	}
	for _, set := range availableKernels() {
		if set.name == *kernelsFlag {
			old := ks
			ks = set
			b.Cleanup(func() { ks = old })
			return
		}
	}
	b.Fatalf("-kernels=%s: not available in this build or on this CPU", *kernelsFlag)
}

// Benchmarks at the models' conv shapes. GFLOP/s counts 2·N·Co·P·Ci·K³ (padding taps
// included), the convention PyTorch comparisons use; testdata/bench_torch.py measures
// torch at the same shapes.
var benchConvs = []struct {
	name string
	s    ConvShape
	dirs string // f = forward, d = backward data, w = backward weight
}{
	{"vel_64to64_b4", shape(4, 64, 64, v3(8, 16, 16), c3(3), c3(1), c3(1)), "fdw"},
	{"vel_128to64_b4", shape(4, 128, 64, v3(8, 16, 16), c3(3), c3(1), c3(1)), "fdw"},
	{"vel_64to128_b4", shape(4, 64, 128, v3(8, 16, 16), c3(3), c3(1), c3(1)), "fdw"},
	{"ae_1to16_k3", shape(1, 1, 16, v3(64, 128, 128), c3(3), c3(1), c3(1)), "f"},
	{"ae_16to32_k4s2", shape(1, 16, 32, v3(64, 128, 128), c3(4), c3(2), c3(1)), "fdw"},
	{"ae_32to64_k4s2", shape(1, 32, 64, v3(32, 64, 64), c3(4), c3(2), c3(1)), "fdw"},
	{"ae_64to128_k4s2", shape(1, 64, 128, v3(16, 32, 32), c3(4), c3(2), c3(1)), "fdw"},
}

func convFlops(s ConvShape) float64 {
	return 2 * float64(s.N) * float64(s.Co) * float64(s.outSize()) * float64(s.Ci) * float64(s.taps())
}

func BenchmarkConv3d(b *testing.B) {
	selectKernels(b)
	b.Logf("kernels: %s, GOMAXPROCS %d", ks.name, runtime.GOMAXPROCS(0))
	for _, bc := range benchConvs {
		s := bc.s
		r := rand.New(rand.NewPCG(7, 0))
		x := randSlice(r, s.N*s.Ci*s.inSize())
		w := randSlice(r, s.Co*s.Ci*s.taps())
		bias := randSlice(r, s.Co)
		y := randSlice(r, s.N*s.Co*s.outSize())
		dw := make([]float32, len(w))
		db := make([]float32, s.Co)
		for _, d := range bc.dirs {
			var name string
			var run func()
			switch d {
			case 'f':
				name, run = "forward", func() { Conv3dForward(x, w, bias, y, s) }
			case 'd':
				name, run = "data", func() { Conv3dBackwardData(y, w, x, s) }
			case 'w':
				name, run = "weight", func() { Conv3dBackwardWeight(x, y, dw, db, s) }
			}
			// Shapes the Winograd path serves run both ways; GFLOP/s count the direct
			// algorithm's FLOPs, so the figures compare time.
			paths := []string{""}
			if s.K == c3(3) && s.Stride == c3(1) && s.Pad == c3(1) {
				paths = []string{"/direct", "/winograd"}
			}
			for _, path := range paths {
				b.Run(bc.name+"/"+name+path, func(b *testing.B) {
					defer func(u, f bool) { useWinograd, forceWinograd = u, f }(useWinograd, forceWinograd)
					useWinograd, forceWinograd = path != "/direct", path == "/winograd"
					run()
					b.ResetTimer()
					cpu0 := cpuSeconds()
					for b.Loop() {
						run()
					}
					reportFlops(b, convFlops(s), cpuSeconds()-cpu0)
				})
			}
		}
	}
}

func BenchmarkSgemm(b *testing.B) {
	selectKernels(b)
	const m, n, k = 64, 2048, 1728
	r := rand.New(rand.NewPCG(8, 0))
	a := randSlice(r, m*k)
	bb := randSlice(r, k*n)
	c := make([]float32, m*n)
	cpu0 := cpuSeconds()
	for b.Loop() {
		Sgemm(false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
	}
	reportFlops(b, 2*m*n*k, cpuSeconds()-cpu0)
}

// reportFlops reports GFLOP/s of wall time and GFLOP per CPU-second (per-core
// efficiency, robust to other load on the machine; the benchmark's own set-up is
// excluded by measuring around the timed loop only).
func reportFlops(b *testing.B, flopsPerOp, cpu float64) {
	total := flopsPerOp * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		b.ReportMetric(total/cpu/1e9, "GFLOP/cpu-s")
	}
}
