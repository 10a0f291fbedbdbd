package kern

import (
	"encoding/json"
	"os"
	"testing"
)

type torchCase struct {
	Name                       string
	N, Ci, Co                  int
	In, K, Stride, Pad, Out    [3]int
	X, W, B, Y, Dy, Dx, Dw, Db []float32
}

// TestAgainstTorch checks every direction against PyTorch's own results
// (testdata/torch_conv.json, written by testdata/gen_fixtures.py), which pins the
// conventions the float64 references assume: cross-correlation, padding, the weight
// layout and ConvTranspose3d as the input gradient.
func TestAgainstTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/torch_conv.json")
	if err != nil {
		t.Fatalf("reading fixtures: %v (regenerate with testdata/gen_fixtures.py)", err)
	}
	var fx struct {
		Torch string
		Cases []torchCase
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatalf("parsing testdata/torch_conv.json: %v", err)
	}
	if len(fx.Cases) == 0 {
		t.Fatal("testdata/torch_conv.json has no cases")
	}
	for _, c := range fx.Cases {
		s := ConvShape{N: c.N, Ci: c.Ci, Co: c.Co, In: c.In, K: c.K, Out: c.Out, Stride: c.Stride, Pad: c.Pad}
		// Our error is within tolFactor(K)·Σ|terms|; torch's, summing in some order of
		// its own, within K·u·Σ|terms| (recursive summation); the sum bounds the gap.
		const u = 1.0 / (1 << 24)
		t.Run(c.Name, func(t *testing.T) {
			forProcs(t, func(t *testing.T) {
				if c.X != nil {
					_, mag := refForward(c.X, c.W, c.B, s)
					y := make([]float32, len(c.Y))
					Conv3dForward(c.X, c.W, c.B, y, s)
					k := s.Ci*s.taps() + 1
					compare(t, "y", y, widen(c.Y), mag, tolFactor(k)+float64(k)*u)
				}
				_, mag := refBackwardData(c.Dy, c.W, s)
				dx := make([]float32, len(c.Dx))
				Conv3dBackwardData(c.Dy, c.W, dx, s)
				k := s.Co * s.taps()
				compare(t, "dx", dx, widen(c.Dx), addFloor(mag), tolFactor(k)+float64(k)*u)
				if c.X != nil {
					_, dwMag, _, dbMag := refBackwardWeight(c.X, c.Dy, s)
					dw := make([]float32, len(c.Dw))
					db := make([]float32, len(c.Db))
					Conv3dBackwardWeight(c.X, c.Dy, dw, db, s)
					k := s.N * s.outSize()
					compare(t, "dw", dw, widen(c.Dw), dwMag, tolFactor(k)+float64(k)*u)
					compare(t, "db", db, widen(c.Db), dbMag, tolFactor(k)+float64(k)*u)
				}
			})
		})
	}
}

func widen(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}
