//go:build !purego

package kern

//go:noescape
func gnSumAVX(x *float32, nb int) float64

//go:noescape
func gnCentredSqAVX(x *float32, nb int, m float32) float64

//go:noescape
func dySumsAVX(x, dy *float32, nb int, mu float32) (a, b float64)

//go:noescape
func affineAVX(x, y *float32, n int, a, b float32)

//go:noescape
func linAVX(dy, x, out *float32, n int, k1, k2, k3 float32)

// The Impl functions take whole blocks (reductions) or return how many leading elements
// they did (maps, in runs of 32); the callers in gn.go do the rest.

func gnSumImpl(x []float32) float64 {
	if !hasAVX2 || len(x) == 0 {
		return gnSumGo(x)
	}
	return gnSumAVX(&x[0], len(x)/gnBlock)
}

func gnCentredSqImpl(x []float32, m float32) float64 {
	if !hasAVX2 || len(x) == 0 {
		return gnCentredSqGo(x, m)
	}
	return gnCentredSqAVX(&x[0], len(x)/gnBlock, m)
}

func dySumsImpl(x, dy []float32, mu float32) (a, b float64) {
	if !hasAVX2 || len(x) == 0 {
		return dySumsGo(x, dy, mu)
	}
	_ = dy[len(x)-1]
	return dySumsAVX(&x[0], &dy[0], len(x)/gnBlockDy, mu)
}

func affineImpl(x, y []float32, a, b float32) int {
	n := len(x) &^ 31
	if !hasAVX2 || n == 0 {
		return 0
	}
	_ = y[n-1]
	affineAVX(&x[0], &y[0], n, a, b)
	return n
}

func linImpl(dy, x, out []float32, k1, k2, k3 float32) int {
	n := len(dy) &^ 31
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _ = x[n-1], out[n-1]
	linAVX(&dy[0], &x[0], &out[0], n, k1, k2, k3)
	return n
}

//go:noescape
func axpyAVX(a float32, x, y *float32, n int)

//go:noescape
func axpbyAVX(a float32, x *float32, b float32, y, out *float32, n int)

func axpyImpl(a float32, x, y []float32) int {
	n := len(x) &^ 31
	if !hasAVX2 || n == 0 {
		return 0
	}
	_ = y[n-1]
	axpyAVX(a, &x[0], &y[0], n)
	return n
}

func axpbyImpl(a float32, x []float32, b float32, y, out []float32) int {
	n := len(x) &^ 31
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _ = y[n-1], out[n-1]
	axpbyAVX(a, &x[0], b, &y[0], &out[0], n)
	return n
}
