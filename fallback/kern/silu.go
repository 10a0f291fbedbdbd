package kern

import "math"

// SiLU computes y[i] = x[i]·σ(x[i]) for i < len(x), σ(x) = 1/(1+e^{-x}). y may alias x
// (the same slice); it must be at least as long as x. On a given build and CPU each
// y[i] depends on x[i] alone, not on its position or the slice's length, so a slice may
// be split anywhere (callers that fuse ops rely on it; TestSiLUSplit checks it).
//
// Accuracy: within 4 float32 ulps of the exact value for every float32 input, including
// results in the denormal range (x down to about -108); measured maximum 2.82 ulps over a
// dense sweep of float32 values (silu_test.go). NaN gives NaN, +Inf gives +Inf and -Inf gives NaN (-Inf·0), as
// float64 x·σ(x) does.
func SiLU(x, y []float32) {
	if len(y) < len(x) {
		panic("kern.SiLU: y shorter than x")
	}
	siluImpl(x, y[:len(x)])
}

// SiLUBackward computes dx[i] = dy[i]·σ(x[i])·(1 + x[i]·(1-σ(x[i]))), the gradient of
// SiLU, for i < len(x). dx may alias dy or x; dy and dx must be at least as long as x.
//
// The error is within 5 float32 ulps (measured 3.87) of |dy|·(σ + |x|·σ·(1-σ)), the size
// of the terms, which is |dx| for x ≥ 0; for x < 0 the bracket cancels (to 0 at x ≈
// -1.2785), and no float32 evaluation keeps relative accuracy near that root.
func SiLUBackward(x, dy, dx []float32) {
	if len(dy) < len(x) || len(dx) < len(x) {
		panic("kern.SiLUBackward: dy or dx shorter than x")
	}
	siluBackwardImpl(x, dy[:len(x)], dx[:len(x)])
}

// The exponential e^{-t}, t = min(|x|, siluClamp), is evaluated as p·2^{-k}: k =
// round(t·log₂e), s = k·ln2 - t in two parts (Cody–Waite; ln2Hi has 9 significant bits so
// k·ln2Hi and the subtraction are exact for k ≤ 255 even without FMA), then p = e^s ≈
// 1 + s + s²·(c2 + s·(c3 + s·(c4 + s·(c5 + s·c6)))) on |s| ≤ ln2/2 (a relative-error
// least-squares fit on Chebyshev nodes, max relative error 4e-9 with these float32
// coefficients, well under the float32 unit 6e-8).
//
// Keeping p and k apart is what makes deep negative x accurate: x·σ(x) = x·p·2^{-k}/(1+z)
// with z = e^{-t} is formed at normal magnitude and only then scaled by 2^{-k}, in two
// steps 2^{-(k-k/2)}·2^{-k/2} each of which is a normal float32 (exponent bits), so the
// result rounds once even when it is denormal (the first factor is applied exactly to x,
// or to 1 + x·(1-σ) in the gradient, which also keeps x·p from overflowing). The clamp
// 176 makes k reach 254 so that one factor becomes 2^{-127}, whose exponent bits are all zero: the value 0. Then x = -Inf
// gives -Inf·0 = NaN, as x·σ(x) does, and all x < -176 give -0 (their SiLU underflows
// anyway below x ≈ -108).
const (
	siluClamp = 176
	siluLog2e = 1.44269502      // float32(1/ln 2)
	siluLn2Hi = 0.693359375     // 355/512
	siluLn2Lo = -2.12194442e-04 // float32(ln 2 - ln2Hi)
	siluC2    = 0.49999994
	siluC3    = 0.166665196
	siluC4    = 0.0416684076
	siluC5    = 0.00836891588
	siluC6    = 0.00138141692
)

// siluTab holds the constants for the assembly kernels, each repeated 8 times (one YMM
// register's worth), in the order the assembly expects.
var siluTab = func() (t [12][8]uint32) {
	vals := [12]uint32{
		0x7fffffff, // |x| mask
		math.Float32bits(siluClamp),
		math.Float32bits(siluLog2e),
		math.Float32bits(siluLn2Hi),
		math.Float32bits(siluLn2Lo),
		math.Float32bits(siluC6),
		math.Float32bits(siluC5),
		math.Float32bits(siluC4),
		math.Float32bits(siluC3),
		math.Float32bits(siluC2),
		math.Float32bits(1),
		127, // exponent bias, as an integer
	}
	for i, v := range vals {
		for j := range t[i] {
			t[i][j] = v
		}
	}
	return t
}()

// pow2 returns 2^{-j} for 0 ≤ j ≤ 127 from exponent bits (j = 127 gives 0).
func pow2(j int32) float32 { return math.Float32frombits(uint32(127-j) << 23) }

// expParts returns p and k with e^{-min(|v|, siluClamp)} = p·2^{-k}, 0 ≤ k ≤ 254.
func expParts(v float32) (p float32, k int32) {
	t := min(float32(math.Abs(float64(v))), siluClamp)
	k = int32(t*siluLog2e + 0.5) // round to nearest (t ≥ 0)
	kf := float32(k)
	s := float32(kf*siluLn2Hi) - t
	s += kf * siluLn2Lo
	q := s * (siluC2 + s*(siluC3+s*(siluC4+s*(siluC5+s*siluC6))))
	return 1 + (s + s*q), k
}

// siluGo is the plain-Go SiLU: the same algorithm as the assembly, without FMA.
func siluGo(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		if v != v {
			y[i] = v
			continue
		}
		p, k := expParts(v)
		d := 1 + p*pow2(min(k, 127)) // 1 + e^{-|x|}
		if v >= 0 {
			y[i] = v / d
			continue
		}
		// x < 0: x·e^{x}/(1+e^{x}), with the 2^{-k} of e^{x} applied in two factors.
		// The first factor is exact and keeps v·p from overflowing near -MaxFloat32; the
		// second rounds once.
		k2 := k >> 1
		y[i] = ((v * pow2(k-k2)) * p / d) * pow2(k2)
	}
}

// siluBackwardGo is the plain-Go SiLU gradient.
func siluBackwardGo(x, dy, dx []float32) {
	dy, dx = dy[:len(x)], dx[:len(x)]
	for i, v := range x {
		g := dy[i]
		if v != v {
			dx[i] = v
			continue
		}
		p, k := expParts(v)
		z := p * pow2(min(k, 127))
		d := 1 + z
		e := (1 - d) + z // the rounding error of d, exactly (Fast2Sum: 1 ≥ z)
		q := 1 / d
		q -= q * (e * q) // 1/(d+e) to first order
		if v >= 0 {      // σ = q, 1-σ = z·q
			dx[i] = g * q * (1 + v*(z*q))
			continue
		}
		// σ = p·q·2^{-k}, 1-σ = q
		k2 := k >> 1
		dx[i] = (g * (p * q) * ((1 + v*q) * pow2(k-k2))) * pow2(k2)
	}
}
