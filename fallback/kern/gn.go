package kern

// GroupNorm's row kernels: the reductions and affine maps that GroupNorm's forward and
// backward run over each channel's spatial row. The reductions sum blocks of 128 (64 for
// DySums) elements in 8 float32 lanes of 16 (8) terms each — so that add latency does
// not serialise the loop and a vector register holds the lanes — and add each block's
// lanes, as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) in float64, into a float64 total; the
// tail past the last whole block is added element by element in float64. Every float32
// partial sums at most 16 terms: at most ~16u relative to the sum of absolute terms. The
// blocking depends only on the length, so results are deterministic; the assembly (amd64)
// does the same operations in the same order as the Go below, bit for bit (gn_test.go).
const (
	gnBlock   = 128
	gnBlockDy = 64
)

// GNSum returns Σx.
func GNSum(x []float32) float64 {
	n := len(x) / gnBlock * gnBlock
	acc := gnSumImpl(x[:n])
	for _, v := range x[n:] {
		acc += float64(v)
	}
	return acc
}

// GNCentredSq returns Σ(x-mu)², centring in float32 against mu rounded to float32:
// rounding mu by δ only adds L·δ² to the sum (the deviations from the exact mean sum to
// zero), which is negligible unless |mean|/σ approaches 1/u.
func GNCentredSq(x []float32, mu float64) float64 {
	n := len(x) / gnBlock * gnBlock
	acc := gnCentredSqImpl(x[:n], float32(mu))
	for _, v := range x[n:] {
		t := float64(v) - mu
		acc += t * t
	}
	return acc
}

// DySums returns Σdy and Σdy·(x-mu) (GroupNorm's backward); mu is the forward's float32
// mean, so x-mu is formed exactly as the statistics were.
func DySums(x, dy []float32, mu float32) (sdy, sdyx float64) {
	dy = dy[:len(x)]
	n := len(x) / gnBlockDy * gnBlockDy
	sdy, sdyx = dySumsImpl(x[:n], dy[:n], mu)
	m := float64(mu)
	for i := n; i < len(x); i++ {
		g := float64(dy[i])
		sdy += g
		sdyx += g * (float64(x[i]) - m)
	}
	return sdy, sdyx
}

// Affine sets y[i] = x[i]·a + b (a product and a sum, each rounded; no FMA).
func Affine(x, y []float32, a, b float32) {
	y = y[:len(x)]
	n := affineImpl(x, y, a, b)
	for i := n; i < len(x); i++ {
		y[i] = x[i]*a + b
	}
}

// Lin sets out[i] = dy[i]·k1 + x[i]·k2 + k3, as ((dy·k1) + (x·k2)) + k3.
func Lin(dy, x, out []float32, k1, k2, k3 float32) {
	x, out = x[:len(dy)], out[:len(dy)]
	n := linImpl(dy, x, out, k1, k2, k3)
	for i := n; i < len(dy); i++ {
		out[i] = dy[i]*k1 + x[i]*k2 + k3
	}
}

// lanes8 adds eight float32 lanes into float64 in the fixed tree order.
func lanes8(s *[8]float32) float64 {
	return ((float64(s[0]) + float64(s[1])) + (float64(s[2]) + float64(s[3]))) +
		((float64(s[4]) + float64(s[5])) + (float64(s[6]) + float64(s[7])))
}

// The plain-Go kernels over whole blocks.

func gnSumGo(x []float32) float64 {
	var acc float64
	for i := 0; i+gnBlock <= len(x); i += gnBlock {
		var s [8]float32
		for j := i; j < i+gnBlock; j += 8 {
			v := (*[8]float32)(x[j : j+8])
			for l := range 8 {
				s[l] += v[l]
			}
		}
		acc += lanes8(&s)
	}
	return acc
}

func gnCentredSqGo(x []float32, m float32) float64 {
	var acc float64
	for i := 0; i+gnBlock <= len(x); i += gnBlock {
		var s [8]float32
		for j := i; j < i+gnBlock; j += 8 {
			v := (*[8]float32)(x[j : j+8])
			for l := range 8 {
				t := v[l] - m
				s[l] += t * t
			}
		}
		acc += lanes8(&s)
	}
	return acc
}

func dySumsGo(x, dy []float32, mu float32) (sdy, sdyx float64) {
	for i := 0; i+gnBlockDy <= len(x); i += gnBlockDy {
		var a, b [8]float32
		for j := i; j < i+gnBlockDy; j += 8 {
			v, g := (*[8]float32)(x[j:j+8]), (*[8]float32)(dy[j:j+8])
			for l := range 8 {
				a[l] += g[l]
				b[l] += g[l] * (v[l] - mu)
			}
		}
		sdy += lanes8(&a)
		sdyx += lanes8(&b)
	}
	return sdy, sdyx
}
