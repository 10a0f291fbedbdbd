//go:build purego || !amd64

package kern

func gnSumImpl(x []float32) float64                         { return gnSumGo(x) }
func gnCentredSqImpl(x []float32, m float32) float64        { return gnCentredSqGo(x, m) }
func dySumsImpl(x, dy []float32, mu float32) (a, b float64) { return dySumsGo(x, dy, mu) }
func affineImpl(x, y []float32, a, b float32) int           { return 0 }
func linImpl(dy, x, out []float32, k1, k2, k3 float32) int  { return 0 }

func axpyImpl(a float32, x, y []float32) int                            { return 0 }
func axpbyImpl(a float32, x []float32, b float32, y, out []float32) int { return 0 }
