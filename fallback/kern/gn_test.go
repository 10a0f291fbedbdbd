package kern

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGNRowKernels checks the assembly row kernels against the Go ones bit for bit, on
// lengths around the block sizes and the 32-element runs, and the Go ones against
// float64 sums within their stated bound (16 float32 additions per partial).
func TestGNRowKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	for _, n := range []int{0, 1, 31, 63, 64, 65, 127, 128, 129, 255, 256, 257, 384, 2048, 2049 + 128} {
		x, dy := randSlice(r, n), randSlice(r, n)
		for i := range x {
			x[i] = 3 + 2*x[i] // a mean away from zero
		}
		const mu = 3.1
		full, fullDy := n/gnBlock*gnBlock, n/gnBlockDy*gnBlockDy
		if got, want := gnSumImpl(x[:full]), gnSumGo(x[:full]); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("n=%d: sum %v, Go %v", n, got, want)
		}
		if got, want := gnCentredSqImpl(x[:full], mu), gnCentredSqGo(x[:full], mu); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("n=%d: centred squares %v, Go %v", n, got, want)
		}
		a1, b1 := dySumsImpl(x[:fullDy], dy[:fullDy], mu)
		a2, b2 := dySumsGo(x[:fullDy], dy[:fullDy], mu)
		if math.Float64bits(a1) != math.Float64bits(a2) || math.Float64bits(b1) != math.Float64bits(b2) {
			t.Errorf("n=%d: dy sums %v %v, Go %v %v", n, a1, b1, a2, b2)
		}
		// Against float64, with the Σ|terms| bound.
		var s, sa, c, ca, d, da, e, ea float64
		for i := range x {
			v, g := float64(x[i]), float64(dy[i])
			s += v
			sa += math.Abs(v)
			tt := float64(x[i]-float32(mu)) * float64(x[i]-float32(mu))
			if i >= full {
				tt = (v - mu) * (v - mu)
			}
			c += tt
			ca += tt
			d += g
			da += math.Abs(g)
			p := g * float64(x[i]-float32(mu))
			if i >= fullDy {
				p = g * (v - float64(float32(mu)))
			}
			e += p
			ea += math.Abs(p)
		}
		const u = 1.0 / (1 << 24)
		check := func(what string, got, want, mag float64) {
			if math.Abs(got-want) > 20*u*mag+1e-300 {
				t.Errorf("n=%d: %s = %v, float64 %v (bound %g)", n, what, got, want, 20*u*mag)
			}
		}
		check("GNSum", GNSum(x), s, sa)
		check("GNCentredSq", GNCentredSq(x, mu), c, ca)
		gs, gsx := DySums(x, dy, mu)
		check("DySums dy", gs, d, da)
		check("DySums dy·x̂", gsx, e, ea)
		// Maps: bit for bit against the scalar expressions.
		y, out := make([]float32, n), make([]float32, n)
		Affine(x, y, 0.7, -0.3)
		Lin(dy, x, out, 0.7, -0.3, 0.1)
		for i := range x {
			if want := x[i]*0.7 + -0.3; math.Float32bits(y[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: Affine[%d] = %v, want %v", n, i, y[i], want)
			}
			if want := dy[i]*0.7 + x[i]*-0.3 + 0.1; math.Float32bits(out[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: Lin[%d] = %v, want %v", n, i, out[i], want)
			}
		}
	}
}

// TestAXPY checks AXPY and AXPBY against the scalar expressions bit for bit, also with
// out aliasing x or y.
func TestAXPY(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	for _, n := range []int{0, 5, 32, 33, 100, 1000} {
		x, y := randSlice(r, n), randSlice(r, n)
		got := append([]float32(nil), y...)
		AXPY(0.3, x, got)
		out := make([]float32, n)
		AXPBY(0.3, x, -1.7, y, out)
		inX := append([]float32(nil), x...)
		AXPBY(0.3, inX, -1.7, y, inX)
		for i := range x {
			if want := y[i] + 0.3*x[i]; math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: AXPY[%d] = %v, want %v", n, i, got[i], want)
			}
			want := 0.3*x[i] + -1.7*y[i]
			if math.Float32bits(out[i]) != math.Float32bits(want) || math.Float32bits(inX[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: AXPBY[%d] = %v (in place %v), want %v", n, i, out[i], inX[i], want)
			}
		}
	}
}
