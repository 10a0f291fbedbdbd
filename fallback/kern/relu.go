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

// ReLUBackward computes dx[i] = dy[i] where x[i] > 0 or x[i] is NaN (as PyTorch's
// threshold_backward), else +0, for i < len(x). dx may alias dy or x; dy and dx must be at
// least as long as x.
func ReLUBackward(x, dy, dx []float32) {
	if len(dy) < len(x) || len(dx) < len(x) {
		panic("kern.ReLUBackward: dy or dx shorter than x")
	}
	dy, dx = dy[:len(x)], dx[:len(x)]
	n := reluBackwardImpl(x, dy, dx)
	reluBackwardGo(x[n:], dy[n:], dx[n:])
}

// reluBackwardGo is the plain-Go ReLU gradient.
func reluBackwardGo(x, dy, dx []float32) {
	dy, dx = dy[:len(x)], dx[:len(x)]
	for i, v := range x {
		if v <= 0 {
			dx[i] = 0
		} else {
			dx[i] = dy[i]
		}
	}
}
