package nn

import "math"

// TimeEmbedding is the seed's sinusoidal embedding (SPEC §2), (len(t), dim) row-major:
// with half = dim/2 and f_i = exp(-i·ln(10000)/(half-1)), row n is
// [sin(t_n·f_0) … sin(t_n·f_{half-1}), cos(t_n·f_0) … cos(t_n·f_{half-1})].
// It is computed in float64 and rounded once, so it is at least as accurate as PyTorch's
// float32 evaluation. dim must be even and at least 4 (VelocityConfig.Validate checks it).
func TimeEmbedding(t []float32, dim int) []float32 {
	half := dim / 2
	out := make([]float32, len(t)*dim)
	scale := math.Log(10000) / float64(half-1)
	for n, tn := range t {
		row := out[n*dim : (n+1)*dim]
		for i := range half {
			a := float64(tn) * math.Exp(-float64(i)*scale)
			row[i] = float32(math.Sin(a))
			row[half+i] = float32(math.Cos(a))
		}
	}
	return out
}
