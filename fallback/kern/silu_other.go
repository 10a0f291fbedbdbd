//go:build purego || !amd64

package kern

func siluImpl(x, y []float32)              { siluGo(x, y) }
func siluBackwardImpl(x, dy, dx []float32) { siluBackwardGo(x, dy, dx) }

// siluPaths lists the SiLU implementations this build and CPU can run (for tests).
func siluPaths() []siluPath {
	return []siluPath{{"go", siluGo, siluBackwardGo}}
}
