package fallback

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/latentad/latentad/compute"
)

// TestGroupNormSiLUMatchesUnfused: on the CPU the fused op must give exactly what
// GroupNormForward, ActForward(SiLU) and AddSampleBias give one after the other (the
// velocity model's results, checkpoints and golden tests were made with those), for
// every combination of nil pre and nil bias, at shapes that split over goroutines, cut a
// channel row into several chunks, or have no spatial extent; operands sit at odd offsets
// so the vector kernels meet unaligned rows.
func TestGroupNormSiLUMatchesUnfused(t *testing.T) {
	dev := New()
	rng := rand.New(rand.NewPCG(5, 6))
	normal := func(k int, scale, shift float64) []float32 {
		s := make([]float32, k)
		for i := range s {
			s[i] = float32(rng.NormFloat64()*scale + shift)
		}
		return s
	}
	// view returns a tensor of the shape at offset off inside a larger buffer.
	view := func(data []float32, off int, shape ...int) *compute.Tensor {
		n := compute.Numel(shape)
		buf := make([]float32, off+n+1)
		if data != nil {
			copy(buf[off:], data)
		}
		return compute.FromHost(dev, buf, len(buf)).View(off, shape...)
	}
	for _, tc := range []struct {
		shape  []int
		groups int
	}{
		{[]int{4, 64, 8, 16, 16}, 8}, // the velocity model's
		{[]int{2, 16, 9, 16, 16}, 4}, // rows of 2304: a chunk boundary inside each
		{[]int{3, 12, 2, 3, 5}, 2},
		{[]int{2, 12}, 4},
	} {
		for _, withPre := range []bool{true, false} {
			for _, withBias := range []bool{true, false} {
				name := fmt.Sprintf("%v/G%d/pre=%v/bias=%v", tc.shape, tc.groups, withPre, withBias)
				t.Run(name, func(t *testing.T) {
					n, c := tc.shape[0], tc.shape[1]
					size := compute.Numel(tc.shape)
					// Wide pre-activations (γ up to ~4, a shifted x) reach SiLU's saturation.
					x := view(normal(size, 2, 3), 3, tc.shape...)
					gamma, beta := view(normal(c, 1.5, 1), 1, c), view(normal(c, 1, 0), 5, c)
					var bias *compute.Tensor
					if withBias {
						bias = view(normal(n*c, 1, 0), 7, n, c)
					}
					g := tc.groups

					// The unfused sequence.
					wantPre, wantY := view(nil, 1, tc.shape...), view(nil, 2, tc.shape...)
					wantMean, wantRstd := view(nil, 3, n, g), view(nil, 1, n, g)
					dev.GroupNormForward(x, gamma, beta, wantPre, wantMean, wantRstd, g, 1e-5)
					dev.ActForward(compute.SiLU, wantPre, wantY)
					if withBias {
						dev.AddSampleBias(wantY, bias)
					}

					var pre *compute.Tensor
					if withPre {
						pre = view(nil, 5, tc.shape...)
					}
					y, mean, rstd := view(nil, 3, tc.shape...), view(nil, 2, n, g), view(nil, 5, n, g)
					dev.GroupNormSiLU(x, gamma, beta, bias, pre, y, mean, rstd, g, 1e-5)

					same := func(what string, got, want *compute.Tensor) {
						t.Helper()
						gs, ws := compute.ToHost(got), compute.ToHost(want)
						for i := range ws {
							if math.Float32bits(gs[i]) != math.Float32bits(ws[i]) {
								t.Fatalf("%s differs at %d: fused %v, unfused %v", what, i, gs[i], ws[i])
							}
						}
					}
					same("y", y, wantY)
					same("mean", mean, wantMean)
					same("rstd", rstd, wantRstd)
					if withPre {
						same("pre", pre, wantPre)
					}
				})
			}
		}
	}
}
