package kern

// AXPY sets y[i] += a·x[i] (a product and a sum, each rounded; no FMA) for i < len(x).
func AXPY(a float32, x, y []float32) {
	y = y[:len(x)]
	n := axpyImpl(a, x, y)
	for i := n; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

// AXPBY sets out[i] = a·x[i] + b·y[i] for i < len(x); out may be x or y.
func AXPBY(a float32, x []float32, b float32, y, out []float32) {
	y, out = y[:len(x)], out[:len(x)]
	n := axpbyImpl(a, x, b, y, out)
	for i := n; i < len(x); i++ {
		out[i] = a*x[i] + b*y[i]
	}
}
