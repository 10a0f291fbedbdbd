package metal

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/latentad/latentad/compute"
)

// BenchmarkKernels times the residual block's kernels (Conv3d 64→64 k3 on a (4,64,8,16,16)
// batch and its two gradients, GroupNorm, GroupNorm+SiLU fused, SiLU, AXPY). On a Mac it reports GFLOP/s or GB/s
// from the GPU's own timestamps (all b.N repetitions in one batch); on the emulator, whose
// times say nothing about a GPU, it runs only when LATENTAD_EMU_BENCH=1.
func BenchmarkKernels(b *testing.B) {
	drv := newDriver(b)
	if drv.Name() == "msl-emulator" && os.Getenv("LATENTAD_EMU_BENCH") != "1" {
		b.Skip("emulator: set LATENTAD_EMU_BENCH=1 to time kernels on the CPU anyway")
	}
	dev := New(drv)
	r := rand.New(rand.NewPCG(1, 1))
	shape := []int{4, 64, 8, 16, 16}
	x := compute.FromHost(dev, randn(r, compute.Numel(shape)), shape...)
	y := dev.Alloc(shape...)
	w := compute.FromHost(dev, randn(r, 64*64*27), 64, 64, 3, 3, 3)
	bias, gamma, beta := dev.Alloc(64), dev.Alloc(64), dev.Alloc(64)
	dw, db := dev.Alloc(64, 64, 3, 3, 3), dev.Alloc(64)
	mean, rstd := dev.Alloc(4, 8), dev.Alloc(4, 8)
	flops := 2.0 * float64(4*64*64*27*8*16*16)
	bytes := 4.0 * float64(x.Len())
	cases := []struct {
		name   string
		unit   string
		amount float64
		op     func()
	}{
		{"conv3d_forward", "GFLOP/s", flops, func() { dev.Conv3d(x, w, bias, y, compute.Conv3x3) }},
		{"conv3d_backward_data", "GFLOP/s", flops, func() { dev.Conv3dBackwardData(y, w, x, compute.Conv3x3) }},
		{"conv3d_backward_weight", "GFLOP/s", flops, func() { dev.Conv3dBackwardWeight(x, y, dw, db, compute.Conv3x3) }},
		{"group_norm_forward", "GB/s", 2 * bytes, func() { dev.GroupNormForward(x, gamma, beta, y, mean, rstd, 8, 1e-5) }},
		{"group_norm_silu", "GB/s", 2 * bytes, func() { dev.GroupNormSiLU(x, gamma, beta, nil, nil, y, mean, rstd, 8, 1e-5) }},
		{"silu_forward", "GB/s", 2 * bytes, func() { dev.ActForward(compute.SiLU, x, y) }},
		{"axpy", "GB/s", 3 * bytes, func() { dev.AXPY(0.5, x, y) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			c.op() // compile the pipeline and warm up
			if err := dev.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			s, ok := dev.TimeGPU(b.N, c.op)
			b.StopTimer()
			if ok && s > 0 {
				b.ReportMetric(c.amount/s/1e9, c.unit)
				b.ReportMetric(s*1e3, "gpu-ms/op")
			}
		})
	}
	if err := dev.Sync(); err != nil {
		b.Fatal(err)
	}
}
