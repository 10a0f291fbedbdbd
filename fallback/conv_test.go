package fallback

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/latentad/latentad/compute"
)

// randomShapes draws convolution geometries beyond the conformance suite's table: every
// kernel size 1–4 and stride 1–3 per axis, padding up to the kernel size (past K-1 the
// stride-1 backward-data falls back to the gather), odd channel counts (an unpaired last
// output channel, tap counts that are not multiples of 4) and widths that are not
// multiples of 4.
func randomShapes(count int) []ConvShape {
	rng := rand.New(rand.NewPCG(3, 4))
	var out []ConvShape
	for len(out) < count {
		s := ConvShape{N: 1 + rng.IntN(3), Ci: 1 + rng.IntN(7), Co: 1 + rng.IntN(7)}
		for a := range 3 {
			s.K[a] = 1 + rng.IntN(4)
			s.Stride[a] = 1 + rng.IntN(3)
			if rng.IntN(2) == 0 {
				s.Stride[a] = 1 // the models' common case, drawn more often
			}
			s.Pad[a] = rng.IntN(s.K[a] + 1)
			s.In[a] = 1 + rng.IntN(9)
			s.Out[a] = compute.OutSize(s.In[a], s.K[a], s.Stride[a], s.Pad[a])
		}
		fits := true
		for a := range 3 {
			fits = fits && s.In[a]+2*s.Pad[a] >= s.K[a]
		}
		if fits {
			out = append(out, s)
		}
	}
	return out
}

func randSlice(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func abs32(x []float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(math.Abs(float64(v)))
	}
	return out
}

// near checks |got-want| ≤ tol·mag elementwise.
func near(t *testing.T, what string, got, want, mag []float32, tol float64) {
	t.Helper()
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= tol*float64(mag[i])+1e-30) {
			t.Errorf("%s[%d] = %v, want %v (magnitude %v, tolerance %.3g)", what, i, got[i], want[i], mag[i], tol*float64(mag[i]))
			return
		}
	}
}

// sumTol is the tolerance per unit of Σ|terms| when two float32 evaluations of a sum of L
// products, each in its own order, are compared: twice the √L-scaled bound of
// compute/devicetest (float32 roundoff u = 2⁻²⁴).
func sumTol(L int) float64 { return 2 * (4 + 4*math.Sqrt(float64(L))) / (1 << 24) }

// TestTiledMatchesDirect holds the tiled convolutions to the plain direct ones on random
// geometries. The magnitude of each sum comes from running the direct op on |x| and |w|.
func TestTiledMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := append(randomShapes(80),
		// More positions than one float32 chunk of the weight gradient (dwChunk).
		ConvShape{N: 2, Ci: 2, Co: 3, In: [3]int{8, 24, 30}, K: [3]int{3, 3, 3}, Out: [3]int{8, 24, 30},
			Stride: [3]int{1, 1, 1}, Pad: [3]int{1, 1, 1}},
		ConvShape{N: 1, Ci: 3, Co: 2, In: [3]int{16, 30, 34}, K: [3]int{4, 4, 4}, Out: [3]int{8, 15, 17},
			Stride: [3]int{2, 2, 2}, Pad: [3]int{1, 1, 1}})
	for _, s := range shapes {
		t.Run(fmt.Sprintf("%+v", s), func(t *testing.T) {
			inSz, outSz, kSz := s.In[0]*s.In[1]*s.In[2], s.Out[0]*s.Out[1]*s.Out[2], s.K[0]*s.K[1]*s.K[2]
			x, w, b := randSlice(rng, s.N*s.Ci*inSz), randSlice(rng, s.Co*s.Ci*kSz), randSlice(rng, s.Co)
			dy := randSlice(rng, s.N*s.Co*outSz)

			y, ref, mag := make([]float32, len(dy)), make([]float32, len(dy)), make([]float32, len(dy))
			conv3dForward(x, w, b, y, s)
			conv3dForwardDirect(x, w, b, ref, s)
			conv3dForwardDirect(abs32(x), abs32(w), abs32(b), mag, s)
			near(t, "forward", y, ref, mag, sumTol(s.Ci*kSz+1))

			dx, refx, magx := make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x))
			conv3dBackwardData(dy, w, dx, s)
			conv3dBackwardDataDirect(dy, w, refx, s)
			conv3dBackwardDataDirect(abs32(dy), abs32(w), magx, s)
			near(t, "backward-data", dx, refx, magx, sumTol(s.Co*kSz))

			dw, refw, magw := make([]float32, len(w)), make([]float32, len(w)), make([]float32, len(w))
			db, refb := make([]float32, s.Co), make([]float32, s.Co)
			conv3dBackwardWeight(x, dy, dw, db, s)
			conv3dBackwardWeightDirect(x, dy, refw, nil, s)
			conv3dBackwardWeightDirect(abs32(x), abs32(dy), magw, nil, s)
			near(t, "backward-weight", dw, refw, magw, sumTol(s.N*outSz))
			for co := range s.Co {
				var sum float64
				for n := range s.N {
					for _, v := range dy[(n*s.Co+co)*outSz : (n*s.Co+co+1)*outSz] {
						sum += float64(v)
					}
				}
				refb[co] = float32(sum)
			}
			// db is a float64 sum rounded once: equal to the float64 reference rounded.
			for co := range db {
				if db[co] != refb[co] {
					t.Errorf("db[%d] = %v, want %v", co, db[co], refb[co])
				}
			}
		})
	}
}

// TestThreadCountInvariance: work is split so that each output element is computed by one
// goroutine in a fixed order, so results must be bit-identical for any GOMAXPROCS.
func TestThreadCountInvariance(t *testing.T) {
	dev := New()
	rng := rand.New(rand.NewPCG(8, 9))
	const N, C, D, H, W = 2, 16, 4, 8, 12
	x := compute.FromHost(dev, randSlice(rng, N*C*D*H*W), N, C, D, H, W)
	dy := compute.FromHost(dev, randSlice(rng, N*C*D*H*W), N, C, D, H, W)
	w := compute.FromHost(dev, randSlice(rng, C*C*27), C, C, 3, 3, 3)
	gamma, beta := compute.FromHost(dev, randSlice(rng, C), C), compute.FromHost(dev, randSlice(rng, C), C)
	run := func() [][]float32 {
		y, dx, dw, db := dev.Alloc(N, C, D, H, W), dev.Alloc(N, C, D, H, W), dev.Alloc(C, C, 3, 3, 3), dev.Alloc(C)
		gy, mean, rstd := dev.Alloc(N, C, D, H, W), dev.Alloc(N, 4), dev.Alloc(N, 4)
		gdx, dg, dbeta, sc := dev.Alloc(N, C, D, H, W), dev.Alloc(C), dev.Alloc(C), dev.Alloc(C)
		dev.Conv3d(x, w, gamma, y, compute.Conv3x3)
		dev.Conv3dBackwardData(dy, w, dx, compute.Conv3x3)
		dev.Conv3dBackwardWeight(x, dy, dw, db, compute.Conv3x3)
		dev.GroupNormForward(x, gamma, beta, gy, mean, rstd, 4, 1e-5)
		dev.GroupNormBackward(x, dy, gamma, mean, rstd, gdx, dg, dbeta, 4)
		dev.SumChannels(dy, sc)
		var out [][]float32
		for _, t := range []*compute.Tensor{y, dx, dw, db, gy, mean, rstd, gdx, dg, dbeta, sc} {
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
