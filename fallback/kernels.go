package fallback

import "github.com/latentad/latentad/fallback/kern"

// The convolutions run on package kern: a packed, blocked implicit GEMM with AVX2/FMA
// assembly micro-kernels where the CPU has them, and plain Go elsewhere or with -tags
// purego. The tiled plain-Go convolutions of conv_tiled.go stay as their cross-check.
func init() {
	convForward = func(x, w, b, y []float32, s ConvShape) { kern.Conv3dForward(x, w, b, y, kern.ConvShape(s)) }
	convBackwardData = func(dy, w, dx []float32, s ConvShape) { kern.Conv3dBackwardData(dy, w, dx, kern.ConvShape(s)) }
	convBackwardWeight = func(x, dy, dw, db []float32, s ConvShape) {
		kern.Conv3dBackwardWeight(x, dy, dw, db, kern.ConvShape(s))
	}
}
