//go:build !purego

package kern

// reluAVX computes ReLU on n floats, n a multiple of 32 (see relu_amd64.s).
//
//go:noescape
func reluAVX(x, y *float32, n int)

// reluImpl runs the assembly on the largest multiple of 32 elements and returns it.
func reluImpl(x, y []float32) int {
	n := len(x) &^ 31
	if n == 0 || !hasAVX2 {
		return 0
	}
	reluAVX(&x[0], &y[0], n)
	return n
}

// reluBackwardAVX computes the ReLU gradient on n floats, n a multiple of 32.
//
//go:noescape
func reluBackwardAVX(x, dy, dx *float32, n int)

func reluBackwardImpl(x, dy, dx []float32) int {
	n := len(x) &^ 31
	if n == 0 || !hasAVX2 {
		return 0
	}
	reluBackwardAVX(&x[0], &dy[0], &dx[0], n)
	return n
}
