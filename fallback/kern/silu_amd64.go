//go:build !purego

package kern

// The assembly kernels process n elements, n a multiple of their vector width (8 for
// AVX2, 16 for AVX-512); c is &siluTab. They load each input before storing the output
// at the same index, so y may alias x and dx may alias dy or x.

//go:noescape
func siluAVX2(n int, x, y *float32, c *[12][8]uint32)

//go:noescape
func siluAVX512(n int, x, y *float32, c *[12][8]uint32)

//go:noescape
func siluBackwardAVX2(n int, x, dy, dx *float32, c *[12][8]uint32)

//go:noescape
func siluBackwardAVX512(n int, x, dy, dx *float32, c *[12][8]uint32)

func siluImpl(x, y []float32) {
	switch {
	case hasAVX512:
		siluVec(x, y, siluAVX512)
	case hasAVX2:
		siluVec(x, y, siluAVX2)
	default:
		siluGo(x, y)
	}
}

func siluBackwardImpl(x, dy, dx []float32) {
	switch {
	case hasAVX512:
		siluBackwardVec(x, dy, dx, siluBackwardAVX512)
	case hasAVX2:
		siluBackwardVec(x, dy, dx, siluBackwardAVX2)
	default:
		siluBackwardGo(x, dy, dx)
	}
}

// siluPaths lists the SiLU implementations this build and CPU can run (for tests).
func siluPaths() []siluPath {
	paths := []siluPath{{"go", siluGo, siluBackwardGo}}
	if hasAVX2 {
		paths = append(paths, siluPath{"avx2",
			func(x, y []float32) { siluVec(x, y, siluAVX2) },
			func(x, dy, dx []float32) { siluBackwardVec(x, dy, dx, siluBackwardAVX2) }})
	}
	if hasAVX512 {
		paths = append(paths, siluPath{"avx512",
			func(x, y []float32) { siluVec(x, y, siluAVX512) },
			func(x, dy, dx []float32) { siluBackwardVec(x, dy, dx, siluBackwardAVX512) }})
	}
	return paths
}

// siluVec runs a kernel over the whole vectors of x and the tail through a 16-element
// buffer, so every element takes the same arithmetic path. Lengths are checked by the caller.
func siluVec(x, y []float32, kernel func(int, *float32, *float32, *[12][8]uint32)) {
	y = y[:len(x)]
	n := len(x) &^ 15
	if n > 0 {
		kernel(n, &x[0], &y[0], &siluTab)
	}
	if n < len(x) {
		var bx, by [16]float32
		copy(bx[:], x[n:])
		kernel(16, &bx[0], &by[0], &siluTab)
		copy(y[n:], by[:])
	}
}

func siluBackwardVec(x, dy, dx []float32, kernel func(int, *float32, *float32, *float32, *[12][8]uint32)) {
	dy, dx = dy[:len(x)], dx[:len(x)]
	n := len(x) &^ 15
	if n > 0 {
		kernel(n, &x[0], &dy[0], &dx[0], &siluTab)
	}
	if n < len(x) {
		var bx, bdy, bdx [16]float32
		copy(bx[:], x[n:])
		copy(bdy[:], dy[n:])
		kernel(16, &bx[0], &bdy[0], &bdx[0], &siluTab)
		copy(dx[n:], bdx[:])
	}
}
