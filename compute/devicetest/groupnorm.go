package devicetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/latentad/latentad/compute"
)

type gnCase struct {
	shape  []int // (N, C, spatial…)
	groups int
	shift  float64 // common offset of x: a large one exposes E[x²]-E[x]² cancellation
}

func gnCases(o Options) []gnCase {
	if o.Small {
		return []gnCase{{[]int{3, 12, 2, 3, 5}, 2, 0}, {[]int{1, 16, 3, 5, 7}, 8, 100}}
	}
	return []gnCase{
		{[]int{1, 8, 3, 5, 7}, 8, 0},
		{[]int{3, 12, 2, 3, 5}, 2, 0},
		{[]int{2, 5, 3, 5, 7}, 1, 0.5},
		{[]int{3, 16, 4, 4, 4}, 8, 0},
		{[]int{1, 16, 3, 5, 7}, 8, 100},
		{[]int{2, 12}, 4, 0},            // no spatial extent: groups of 3 values
		{[]int{1, 64, 8, 16, 16}, 8, 0}, // the model's layer, big enough to split over cores
	}
}

// gnStats returns the float64 per-(n, g) mean and 1/sqrt(biased var + eps) of xs.
func gnStats(xs []float32, n, c, sp, g int, eps float64) (mean, rstd []float64) {
	size := c / g * sp
	mean, rstd = make([]float64, n*g), make([]float64, n*g)
	for r := range n * g {
		grp := xs[r*size : (r+1)*size]
		var s float64
		for _, v := range grp {
			s += float64(v)
		}
		mu := s / float64(size)
		var ss float64
		for _, v := range grp {
			ss += (float64(v) - mu) * (float64(v) - mu)
		}
		mean[r], rstd[r] = mu, 1/math.Sqrt(ss/float64(size)+eps)
	}
	return mean, rstd
}

func testGroupNorm(t *testing.T, dev compute.Device, o Options) {
	const eps = 1e-5
	for _, gc := range gnCases(o) {
		n, c, sp := split(gc.shape)
		G := gc.groups
		size := c / G * sp
		L := size
		name := fmt.Sprintf("%s/G%d/mean%g", shapeName(gc.shape...), G, gc.shift)
		t.Run("forward/"+name, func(t *testing.T) {
			e := newEnv(t, dev)
			xs := e.normal(n*c*sp, 1.5, gc.shift)
			gs, bs := e.normal(c, 1, 1), e.normal(c, 0.5, 0)
			mean, rstd := gnStats(xs, n, c, sp, G, eps)
			want, mag := make([]float64, len(xs)), make([]float64, len(xs))
			magMean, magRstd := make([]float64, n*G), make([]float64, n*G)
			for i := range n {
				for ch := range c {
					r := i*G + ch/(c/G)
					for s := range sp {
						k := (i*c+ch)*sp + s
						xh := (float64(xs[k]) - mean[r]) * rstd[r]
						want[k] = xh*float64(gs[ch]) + float64(bs[ch])
						// The mean's error scales with |mean|+σ, the variance's likewise;
						// both reach y through rstd·γ.
						mag[k] = math.Abs(float64(gs[ch]))*(math.Abs(xh)+1+math.Abs(mean[r])*rstd[r]) +
							math.Abs(float64(bs[ch]))
					}
				}
			}
			for r := range n * G {
				magMean[r] = math.Abs(mean[r]) + 1/rstd[r]
				magRstd[r] = rstd[r] * (1 + math.Abs(mean[r])*rstd[r])
			}
			x := e.in("x", xs, gc.shape...)
			gamma, beta := e.in("gamma", gs, c), e.in("beta", bs, c)
			y, mu, rs := e.out("y", gc.shape...), e.out("mean", n, G), e.out("rstd", n, G)
			dev.GroupNormForward(x, gamma, beta, y, mu, rs, G, eps)
			// Group statistics are sums of L = C/G·spatial terms.
			tol := sumTol(L) + 8*u
			e.check("GroupNorm mean", e.get(mu), mean, magMean, tol)
			e.check("GroupNorm rstd", e.get(rs), rstd, magRstd, tol)
			e.check("GroupNorm y", e.get(y), want, mag, tol)
			e.verify()
		})
		t.Run("backward/"+name, func(t *testing.T) {
			e := newEnv(t, dev)
			xs := e.normal(n*c*sp, 1.5, gc.shift)
			dys := e.normal(n*c*sp, 1, 0)
			gs := e.normal(c, 1, 1)
			mean64, rstd64 := gnStats(xs, n, c, sp, G, eps)
			// The backward takes the forward's float32 statistics; the reference uses
			// exactly those values.
			ms, rss := make([]float32, n*G), make([]float32, n*G)
			for r := range ms {
				ms[r], rss[r] = float32(mean64[r]), float32(rstd64[r])
			}
			wantDx, magDx := make([]float64, len(xs)), make([]float64, len(xs))
			wantG, magG := make([]float64, c), make([]float64, c)
			wantB, magB := make([]float64, c), make([]float64, c)
			xhat := func(k, r int) float64 { return (float64(xs[k]) - float64(ms[r])) * float64(rss[r]) }
			for i := range n {
				for g := range G {
					r := i*G + g
					// ⟨dy·γ⟩ and ⟨dy·γ·x̂⟩ over the group, and their magnitudes.
					var a, b, aa, ba float64
					for ch := g * (c / G); ch < (g+1)*(c/G); ch++ {
						for s := range sp {
							k := (i*c+ch)*sp + s
							dg := float64(dys[k]) * float64(gs[ch])
							a += dg
							b += dg * xhat(k, r)
							aa += math.Abs(dg)
							ba += math.Abs(dg * xhat(k, r))
						}
					}
					a, b, aa, ba = a/float64(size), b/float64(size), aa/float64(size), ba/float64(size)
					rs := float64(rss[r])
					for ch := g * (c / G); ch < (g+1)*(c/G); ch++ {
						for s := range sp {
							k := (i*c+ch)*sp + s
							xh := xhat(k, r)
							dg := float64(dys[k]) * float64(gs[ch])
							wantDx[k] = rs * (dg - a - xh*b)
							// x̂ itself carries the rounding of x-mean, relative to |x|+|mean|.
							xhMag := math.Abs(xh) + (math.Abs(float64(xs[k]))+math.Abs(float64(ms[r])))*rs
							magDx[k] = rs * (math.Abs(dg) + aa + xhMag*ba)
							wantB[ch] += float64(dys[k])
							magB[ch] += math.Abs(float64(dys[k]))
							wantG[ch] += float64(dys[k]) * xh
							magG[ch] += math.Abs(float64(dys[k])) * xhMag
						}
					}
				}
			}
			x, dy, gamma := e.in("x", xs, gc.shape...), e.in("dy", dys, gc.shape...), e.in("gamma", gs, c)
			mu, rs := e.in("mean", ms, n, G), e.in("rstd", rss, n, G)
			dx, dgamma, dbeta := e.out("dx", gc.shape...), e.out("dgamma", c), e.out("dbeta", c)
			dev.GroupNormBackward(x, dy, gamma, mu, rs, dx, dgamma, dbeta, G)
			e.check("GroupNorm dx", e.get(dx), wantDx, magDx, sumTol(L)+8*u)
			e.check("GroupNorm dgamma", e.get(dgamma), wantG, magG, sumTol(n*sp)+8*u)
			e.check("GroupNorm dbeta", e.get(dbeta), wantB, magB, sumTol(n*sp))
			e.verify()
		})
	}
}

// testGroupNormSiLU checks the fused GroupNorm → SiLU → per-sample bias op against the
// float64 composition of the three. Each case runs the op twice on the same inputs, once
// keeping pre and once with pre nil: both must meet the reference, and y and the
// statistics must not depend on whether pre is written (models recompute the activation
// with pre in their backward and rely on getting the forward's values).
func testGroupNormSiLU(t *testing.T, dev compute.Device, o Options) {
	const eps = 1e-5
	cases := gnCases(o)
	if !o.Small {
		// Two samples of rows longer than a CPU chunk (2048), large enough to split over
		// cores: each sample must take its own bias row.
		cases = append(cases, gnCase{[]int{2, 16, 9, 16, 16}, 4, 0})
	}
	for _, gc := range cases {
		for _, withBias := range []bool{true, false} {
			n, c, sp := split(gc.shape)
			G := gc.groups
			name := fmt.Sprintf("%s/G%d/mean%g", shapeName(gc.shape...), G, gc.shift)
			if withBias {
				name += "/bias"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, dev)
				xs := e.normal(n*c*sp, 1.5, gc.shift)
				gs, bs := e.normal(c, 1, 1), e.normal(c, 0.5, 0)
				var sbs []float32
				if withBias {
					sbs = e.normal(n*c, 1, 0)
				}
				mean, rstd := gnStats(xs, n, c, sp, G, eps)
				wantPre, magPre := make([]float64, len(xs)), make([]float64, len(xs))
				wantY, magY := make([]float64, len(xs)), make([]float64, len(xs))
				magMean, magRstd := make([]float64, n*G), make([]float64, n*G)
				for i := range n {
					for ch := range c {
						r := i*G + ch/(c/G)
						var b float64
						if withBias {
							b = float64(sbs[i*c+ch])
						}
						for s := range sp {
							k := (i*c+ch)*sp + s
							xh := (float64(xs[k]) - mean[r]) * rstd[r]
							p := xh*float64(gs[ch]) + float64(bs[ch])
							wantPre[k] = p
							magPre[k] = math.Abs(float64(gs[ch]))*(math.Abs(xh)+1+math.Abs(mean[r])*rstd[r]) +
								math.Abs(float64(bs[ch])) // as GroupNormForward's y
							sg := 1 / (1 + math.Exp(-p))
							wantY[k] = p*sg + b
							// pre's error passes through SiLU' (|SiLU'| < 1.1); SiLU adds a few
							// ulps of |SiLU|+1 (as ActForward), the bias add one rounding.
							magY[k] = math.Abs(sg*(1+p*(1-sg)))*magPre[k] + math.Abs(p*sg) + 1 + math.Abs(b)
						}
					}
				}
				for r := range n * G {
					magMean[r] = math.Abs(mean[r]) + 1/rstd[r]
					magRstd[r] = rstd[r] * (1 + math.Abs(mean[r])*rstd[r])
				}
				x := e.in("x", xs, gc.shape...)
				gamma, beta := e.in("gamma", gs, c), e.in("beta", bs, c)
				var bias *compute.Tensor
				if withBias {
					bias = e.in("bias", sbs, n, c)
				}
				pre, y := e.out("pre", gc.shape...), e.out("y", gc.shape...)
				mu, rs := e.out("mean", n, G), e.out("rstd", n, G)
				dev.GroupNormSiLU(x, gamma, beta, bias, pre, y, mu, rs, G, eps)
				// GroupNormForward's tolerance for the statistics and pre (sums of L = C/G·
				// spatial terms), ActForward's 16u for SiLU on top for y.
				tol := sumTol(c/G*sp) + 8*u
				gotY, gotMu, gotRs := e.get(y), e.get(mu), e.get(rs)
				e.check("GroupNormSiLU mean", gotMu, mean, magMean, tol)
				e.check("GroupNormSiLU rstd", gotRs, rstd, magRstd, tol)
				e.check("GroupNormSiLU pre", e.get(pre), wantPre, magPre, tol)
				e.check("GroupNormSiLU y", gotY, wantY, magY, tol+8*u)

				y2 := e.out("y (pre nil)", gc.shape...)
				mu2, rs2 := e.out("mean (pre nil)", n, G), e.out("rstd (pre nil)", n, G)
				dev.GroupNormSiLU(x, gamma, beta, bias, nil, y2, mu2, rs2, G, eps)
				e.exact("GroupNormSiLU y with pre nil", e.get(y2), gotY)
				e.exact("GroupNormSiLU mean with pre nil", e.get(mu2), gotMu)
				e.exact("GroupNormSiLU rstd with pre nil", e.get(rs2), gotRs)
				e.verify()
			})
		}
	}
}
