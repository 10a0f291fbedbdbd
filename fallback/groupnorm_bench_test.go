package fallback

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/latentad/latentad/compute"
)

// BenchmarkGroupNorm runs both directions at the model's residual-block shape
// (4, 64, 8, 16, 16) with 8 groups, reporting bytes read+written as throughput.
func BenchmarkGroupNorm(b *testing.B) {
	d := New()
	shape := []int{4, 64, 8, 16, 16}
	fill := func(t *compute.Tensor, seed float32) {
		s := d.(*cpu).data(t)
		for i := range s {
			s[i] = seed + float32(i%97)*0.01
		}
	}
	x, dy := d.Alloc(shape...), d.Alloc(shape...)
	y, dx := d.Alloc(shape...), d.Alloc(shape...)
	g, be, dg, db := d.Alloc(64), d.Alloc(64), d.Alloc(64), d.Alloc(64)
	mean, rstd := d.Alloc(4, 8), d.Alloc(4, 8)
	fill(x, 0.3)
	fill(dy, -0.2)
	fill(g, 1)
	fill(be, 0)
	n := int64(4 * x.Len())
	b.Run("forward", func(b *testing.B) {
		b.SetBytes(2 * n)
		for b.Loop() {
			d.GroupNormForward(x, g, be, y, mean, rstd, 8, 1e-5)
		}
	})
	b.Run("backward", func(b *testing.B) {
		b.SetBytes(3 * n)
		for b.Loop() {
			d.GroupNormBackward(x, dy, g, mean, rstd, dx, dg, db, 8)
		}
	})
}

// TestGroupNormThreadCountInvariance: TestThreadCountInvariance's GroupNorm is too small
// to be split over goroutines, so this repeats the check at a shape that is (16 rows of
// 8·392 values, and neither a group nor a channel is a whole number of the 128-value
// float32 blocks), requiring bit-identical outputs for any GOMAXPROCS.
func TestGroupNormThreadCountInvariance(t *testing.T) {
	dev := New()
	rng := rand.New(rand.NewPCG(3, 4))
	shape := []int{2, 64, 7, 8, 7}
	n := 2 * 64 * 7 * 8 * 7
	rs := func(k int, shift float32) []float32 {
		s := make([]float32, k)
		for i := range s {
			s[i] = float32(rng.NormFloat64()) + shift
		}
		return s
	}
	x, dy := compute.FromHost(dev, rs(n, 30), shape...), compute.FromHost(dev, rs(n, 0), shape...)
	gamma, beta := compute.FromHost(dev, rs(64, 1), 64), compute.FromHost(dev, rs(64, 0), 64)
	run := func() [][]float32 {
		y, dx := dev.Alloc(shape...), dev.Alloc(shape...)
		mean, rstd, dg, db := dev.Alloc(2, 8), dev.Alloc(2, 8), dev.Alloc(64), dev.Alloc(64)
		dev.GroupNormForward(x, gamma, beta, y, mean, rstd, 8, 1e-5)
		dev.GroupNormBackward(x, dy, gamma, mean, rstd, dx, dg, db, 8)
		var out [][]float32
		for _, t := range []*compute.Tensor{y, mean, rstd, dx, dg, db} {
			out = append(out, compute.ToHost(t))
		}
		return out
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	one := run()
	for _, procs := range []int{2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		for i, got := range run() {
			for j := range got {
				if math.Float32bits(got[j]) != math.Float32bits(one[i][j]) {
					t.Fatalf("GOMAXPROCS=%d: output %d differs at %d: %v vs %v with 1 thread", procs, i, j, got[j], one[i][j])
				}
			}
		}
	}
}
