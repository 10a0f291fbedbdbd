package fallback

import (
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/compute/devicetest"
)

func TestConformance(t *testing.T) { devicetest.Run(t, New()) }

// BenchmarkOps measures every op at the velocity model's shapes:
//
//	go test -run - -bench Ops ./fallback
func BenchmarkOps(b *testing.B) { devicetest.Bench(b, New()) }

// BenchmarkConvAE measures the autoencoder's stride-2, kernel-4 convolutions (batch 1):
// enc.4 (32→64 on 32×64×64) forward and weight gradient, and dec.0 (ConvTranspose3d
// 128→64 from the 8×16×16 latent), which is a backward-data op.
func BenchmarkConvAE(b *testing.B) {
	dev := New()
	p := compute.ConvS2P1
	run := func(name string, flops float64, op func()) {
		b.Run(name, func(b *testing.B) {
			op()
			for b.Loop() {
				op()
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	x, w, y := dev.Alloc(1, 32, 32, 64, 64), dev.Alloc(64, 32, 4, 4, 4), dev.Alloc(1, 64, 16, 32, 32)
	dev.Fill(x, 0.5)
	dev.Fill(w, 0.25)
	flops := 2.0 * 64 * 32 * 64 * 16 * 32 * 32
	run("enc.4/forward", flops, func() { dev.Conv3d(x, w, nil, y, p) })
	dw, db := dev.Alloc(64, 32, 4, 4, 4), dev.Alloc(64)
	run("enc.4/backward-weight", flops, func() { dev.Conv3dBackwardWeight(x, y, dw, db, p) })
	z, wt, out := dev.Alloc(1, 128, 8, 16, 16), dev.Alloc(128, 64, 4, 4, 4), dev.Alloc(1, 64, 16, 32, 32)
	dev.Fill(z, 0.5)
	dev.Fill(wt, 0.25)
	run("dec.0/transposed", 2.0*128*64*64*8*16*16, func() { dev.Conv3dBackwardData(z, wt, out, p) })
}
