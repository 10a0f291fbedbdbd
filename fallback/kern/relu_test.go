package kern

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestReLU checks ReLU against the plain loop bit for bit, on lengths around the
// assembly's 32-element step, with NaNs, infinities and both zeros, in place and not.
func TestReLU(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32}
	for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 1000} {
		x := randSlice(r, n)
		for i := range x {
			if r.IntN(4) == 0 {
				x[i] = special[r.IntN(len(special))]
			}
		}
		want := make([]float32, n)
		reluGo(x, want)
		got := make([]float32, n)
		ReLU(x, got)
		inPlace := append([]float32(nil), x...)
		ReLU(inPlace, inPlace)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(inPlace[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: ReLU(%g)[%d] = %g (in place %g), want %g", n, x[i], i, got[i], inPlace[i], want[i])
			}
		}
	}
}

// TestReLUBackward checks ReLUBackward against the plain loop bit for bit, with special
// values in x and dy, also with dx aliasing dy.
func TestReLUBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		0, float32(math.Copysign(0, -1))}
	for _, n := range []int{0, 5, 32, 33, 97, 1000} {
		x, dy := randSlice(r, n), randSlice(r, n)
		for i := range x {
			if r.IntN(4) == 0 {
				x[i] = special[r.IntN(len(special))]
			}
			if r.IntN(8) == 0 {
				dy[i] = special[r.IntN(len(special))]
			}
		}
		want, got := make([]float32, n), make([]float32, n)
		reluBackwardGo(x, dy, want)
		ReLUBackward(x, dy, got)
		inPlace := append([]float32(nil), dy...)
		ReLUBackward(x, inPlace, inPlace)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(inPlace[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: x=%g dy=%g: got %g (in place %g), want %g", n, x[i], dy[i], got[i], inPlace[i], want[i])
			}
		}
	}
}
