package kern

// siluPath is one SiLU implementation, for tests and benchmarks over all of them.
type siluPath struct {
	name     string
	forward  func(x, y []float32)
	backward func(x, dy, dx []float32)
}
