package devicetest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/latentad/latentad/compute"
)

// Bench runs per-op benchmarks at the velocity model's shapes (batch 4, 64 channels,
// latent 8×16×16) as sub-benchmarks, reporting GFLOP/s for convolutions and GB/s (bytes
// read plus written, once each) for the memory-bound ops. Each iteration ends with Sync, so
// queued backends are timed to completion.
//
//	func BenchmarkOps(b *testing.B) { devicetest.Bench(b, mybackend.New()) }
func Bench(b *testing.B, dev compute.Device) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(shape ...int) *compute.Tensor {
		data := make([]float32, compute.Numel(shape))
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		return compute.FromHost(dev, data, shape...)
	}
	const N, C, D, H, W = 4, 64, 8, 16, 16
	x, dy := fill(N, C, D, H, W), fill(N, C, D, H, W)
	y, dx := dev.Alloc(N, C, D, H, W), dev.Alloc(N, C, D, H, W)
	w, dw, bias, db := fill(C, C, 3, 3, 3), dev.Alloc(C, C, 3, 3, 3), fill(C), dev.Alloc(C)
	defer func() {
		for _, t := range []*compute.Tensor{x, dy, y, dx, w, dw, bias, db} {
			dev.Release(t)
		}
	}()
	convFlops := 2.0 * N * C * C * 27 * D * H * W
	elems := float64(N * C * D * H * W)
	run := func(name string, work float64, unit string, op func()) {
		b.Run(name, func(b *testing.B) {
			op() // warm up: pipelines, scratch buffers
			if err := dev.Sync(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				op()
				if err := dev.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(work*float64(b.N)/b.Elapsed().Seconds()/1e9, unit)
		})
	}
	run("Conv3d/forward/64-64-k3/4x8x16x16", convFlops, "GFLOP/s",
		func() { dev.Conv3d(x, w, bias, y, compute.Conv3x3) })
	run("Conv3d/backward-data/64-64-k3/4x8x16x16", convFlops, "GFLOP/s",
		func() { dev.Conv3dBackwardData(dy, w, dx, compute.Conv3x3) })
	run("Conv3d/backward-weight/64-64-k3/4x8x16x16", convFlops, "GFLOP/s",
		func() { dev.Conv3dBackwardWeight(x, dy, dw, db, compute.Conv3x3) })

	const G = 8
	gamma, beta := fill(C), fill(C)
	mean, rstd := dev.Alloc(N, G), dev.Alloc(N, G)
	dgamma, dbeta := dev.Alloc(C), dev.Alloc(C)
	run("GroupNorm/forward/4x64x8x16x16", 2*4*elems, "GB/s",
		func() { dev.GroupNormForward(x, gamma, beta, y, mean, rstd, G, 1e-5) })
	run("GroupNorm/backward/4x64x8x16x16", 3*4*elems, "GB/s",
		func() { dev.GroupNormBackward(x, dy, gamma, mean, rstd, dx, dgamma, dbeta, G) })
	// The fused op as the velocity model's blocks call it: with the time-embedding bias,
	// keeping pre (the backward's recompute) and not (the forward).
	sbias := fill(N, C)
	defer dev.Release(sbias)
	run("GroupNormSiLU/pre/4x64x8x16x16", 3*4*elems, "GB/s",
		func() { dev.GroupNormSiLU(x, gamma, beta, sbias, dx, y, mean, rstd, G, 1e-5) })
	run("GroupNormSiLU/no-pre/4x64x8x16x16", 2*4*elems, "GB/s",
		func() { dev.GroupNormSiLU(x, gamma, beta, sbias, nil, y, mean, rstd, G, 1e-5) })
	run("SiLU/forward/4x64x8x16x16", 2*4*elems, "GB/s",
		func() { dev.ActForward(compute.SiLU, x, y) })
	run("SiLU/backward/4x64x8x16x16", 3*4*elems, "GB/s",
		func() { dev.ActBackward(compute.SiLU, x, y, dy, dx) })
	run("AXPY/4x64x8x16x16", 3*4*elems, "GB/s",
		func() { dev.AXPY(1e-3, x, y) })

	// Adam over the velocity model's 1,378,752 parameters (one flat buffer).
	const params = 1378752
	p, g := fill(params), fill(params)
	m, v := dev.Alloc(params), dev.Alloc(params)
	args := compute.AdamArgs{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		StepSize: 1e-4 / (1 - 0.9), BC2Sqrt: float32(math.Sqrt(1 - 0.999))}
	run("Adam/1378752", 7*4*params, "GB/s", func() { dev.Adam(p, g, m, v, args) })
	for _, t := range []*compute.Tensor{gamma, beta, mean, rstd, dgamma, dbeta, p, g, m, v} {
		dev.Release(t)
	}
}
