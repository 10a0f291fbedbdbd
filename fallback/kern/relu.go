package kern

// ReLU computes y[i] = max(x[i], 0) for i < len(x), keeping NaN and −0 as they are (as
// the comparison x < 0 ? 0 : x does, and PyTorch's relu). y may alias x (the same
// slice); it must be at least as long as x. The loop is branch-free in assembly: on
// random signs the branchy Go loop mispredicts every other element.
func ReLU(x, y []float32) {
	if len(y) < len(x) {
		panic("kern.ReLU: y shorter than x")
	}
	y = y[:len(x)]
	n := reluImpl(x, y)
	reluGo(x[n:], y[n:])
}

// reluGo is the plain-Go ReLU.
func reluGo(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
}
