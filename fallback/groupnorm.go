package fallback

import (
	"fmt"
	"math"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/fallback/kern"
)

// GroupNormForward follows torch.nn.functional.group_norm: per (sample, group) the mean
// and biased variance over C/G channels × spatial, computed in two passes (the mean, then
// the centred sum of squares, so that large means do not cancel) with short float32
// partial sums accumulated in float64, rstd = 1/sqrt(var + eps). Each (sample, group) row
// is computed by one goroutine in a fixed order, so results do not depend on GOMAXPROCS.
func (d *cpu) GroupNormForward(x, gamma, beta, y, mean, rstd *compute.Tensor, groups int, eps float32) {
	n, c, sp := gnShapes("GroupNormForward", x, groups)
	mustSameLen("GroupNormForward", x, y)
	mustShape("GroupNormForward", "gamma", gamma, c)
	mustShape("GroupNormForward", "beta", beta, c)
	mustShape("GroupNormForward", "mean", mean, n, groups)
	mustShape("GroupNormForward", "rstd", rstd, n, groups)
	xs, ys, gs, bs := d.data(x), d.data(y), d.data(gamma), d.data(beta)
	ms, rs := d.data(mean), d.data(rstd)
	cpg := c / groups
	size := cpg * sp
	parallel(n*groups, 3*size, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xg := xs[r*size : (r+1)*size]
			mu, rsd := groupStats(xg, eps)
			ms[r], rs[r] = float32(mu), float32(rsd)
			yg := ys[r*size : (r+1)*size]
			c0 := (r % groups) * cpg
			for ch := range cpg {
				// y = x·a + b with a = rstd·γ, b = β - mean·a, as PyTorch's CPU kernel
				// does; a and b are formed in float64 so only the final affine map rounds
				// in float32.
				a := rsd * float64(gs[c0+ch])
				b := float64(bs[c0+ch]) - mu*a
				affine32(xg[ch*sp:(ch+1)*sp], yg[ch*sp:(ch+1)*sp], float32(a), float32(b))
			}
		}
	})
}

// groupStats returns one group's mean and rstd = 1/sqrt(biased variance + eps) in float64.
// GroupNormForward and GroupNormSiLU share it so that their statistics agree bit for bit.
func groupStats(xg []float32, eps float32) (mu, rsd float64) {
	mu = blockSum(xg) / float64(len(xg))
	rsd = 1 / math.Sqrt(blockCentredSq(xg, mu)/float64(len(xg))+float64(eps))
	return mu, rsd
}

// gnChunk bounds the run of a channel row that GroupNormSiLU takes through its three
// steps at a time: 2048 floats of pre and of y (16 KB) stay in L1 from one step to the next.
const gnChunk = 2048

// GroupNormSiLU computes the statistics as GroupNormForward does, then for each channel
// row, a chunk at a time, the affine map into pre (into y when pre is nil), kern.SiLU into
// y and the bias add. Each step is the float32 arithmetic of GroupNormForward,
// ActForward(SiLU) and AddSampleBias (kern.SiLU gives the same bits for an element
// whatever the slice around it), so the result equals those three ops' bit for bit; pre
// and y are written once and never read back from memory.
func (d *cpu) GroupNormSiLU(x, gamma, beta, bias, pre, y, mean, rstd *compute.Tensor, groups int, eps float32) {
	const op = "GroupNormSiLU"
	n, c, sp := gnShapes(op, x, groups)
	mustSameLen(op, x, y)
	mustShape(op, "gamma", gamma, c)
	mustShape(op, "beta", beta, c)
	mustShape(op, "mean", mean, n, groups)
	mustShape(op, "rstd", rstd, n, groups)
	xs, ys, gs, bs := d.data(x), d.data(y), d.data(gamma), d.data(beta)
	ms, rs := d.data(mean), d.data(rstd)
	var ps, sbs []float32
	if pre != nil {
		mustSameLen(op, x, pre)
		ps = d.data(pre)
	}
	if bias != nil {
		mustShape(op, "bias", bias, n, c)
		sbs = d.data(bias)
	}
	cpg := c / groups
	size := cpg * sp
	parallel(n*groups, 6*size, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			mu, rsd := groupStats(xs[r*size:(r+1)*size], eps)
			ms[r], rs[r] = float32(mu), float32(rsd)
			c0 := (r % groups) * cpg
			for ch := range cpg {
				a := rsd * float64(gs[c0+ch]) // as in GroupNormForward
				b := float64(bs[c0+ch]) - mu*a
				row := (r/groups)*c + c0 + ch
				for i := row * sp; i < (row+1)*sp; i += gnChunk {
					j := min(i+gnChunk, (row+1)*sp)
					yr := ys[i:j]
					pr := yr // without pre, y holds the normalised values until SiLU overwrites them
					if ps != nil {
						pr = ps[i:j]
					}
					affine32(xs[i:j], pr, float32(a), float32(b))
					kern.SiLU(pr, yr)
					if sbs != nil {
						addScalar(yr, sbs[row])
					}
				}
			}
		}
	})
}

// The reductions below sum blocks of gnBlock elements in float32 partial sums (several
// independent lanes, so that add latency does not serialise the loop) and add each
// block's partials into a float64 total: float32 arithmetic is about twice as fast here
// as converting every element to float64. Every float32 partial sums at most 32 terms,
// so it adds at most ~32u relative to Σ|terms| (typically ~√32·u), below the conformance
// tolerance u·(4+4√L) ≥ 36u that applies once a group holds a full block (L ≥ 64; smaller
// groups give shorter partials). The blocking depends only on the slice length, never on
// the number of workers, so results are deterministic.
const (
	gnBlock   = 128 // blockSum: 8 lanes × 16 terms; blockCentredSq: 4 lanes × 32 terms
	gnBlockDy = 64  // dySums: 2 lanes × 16 iterations of 2 terms
)

// blockSum returns Σx.
func blockSum(x []float32) float64 {
	var acc float64
	i := 0
	for ; i+gnBlock <= len(x); i += gnBlock {
		blk := x[i : i+gnBlock : i+gnBlock]
		var s0, s1, s2, s3, s4, s5, s6, s7 float32
		for j := 0; j+8 <= len(blk); j += 8 {
			v := blk[j : j+8 : j+8]
			s0 += v[0]
			s1 += v[1]
			s2 += v[2]
			s3 += v[3]
			s4 += v[4]
			s5 += v[5]
			s6 += v[6]
			s7 += v[7]
		}
		acc += ((float64(s0) + float64(s1)) + (float64(s2) + float64(s3))) +
			((float64(s4) + float64(s5)) + (float64(s6) + float64(s7)))
	}
	for ; i < len(x); i++ {
		acc += float64(x[i])
	}
	return acc
}

// blockCentredSq returns Σ(x-mu)². The centring is done in float32 against mu rounded
// to float32: rounding mu by δ only adds L·δ² to the sum (the deviations from the exact
// mean sum to zero), which is negligible unless |mean|/σ approaches 1/u.
func blockCentredSq(x []float32, mu float64) float64 {
	m := float32(mu)
	var acc float64
	i := 0
	for ; i+gnBlock <= len(x); i += gnBlock {
		blk := x[i : i+gnBlock : i+gnBlock]
		var s0, s1, s2, s3 float32
		for j := 0; j+4 <= len(blk); j += 4 {
			v := blk[j : j+4 : j+4]
			t0, t1, t2, t3 := v[0]-m, v[1]-m, v[2]-m, v[3]-m
			s0 += t0 * t0
			s1 += t1 * t1
			s2 += t2 * t2
			s3 += t3 * t3
		}
		acc += (float64(s0) + float64(s1)) + (float64(s2) + float64(s3))
	}
	for ; i < len(x); i++ {
		t := float64(x[i]) - mu
		acc += t * t
	}
	return acc
}

// affine32 sets y[i] = x[i]·a + b.
func affine32(x, y []float32, a, b float32) {
	y = y[:len(x)]
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v, o := x[i:i+8:i+8], y[i:i+8:i+8]
		o[0] = v[0]*a + b
		o[1] = v[1]*a + b
		o[2] = v[2]*a + b
		o[3] = v[3]*a + b
		o[4] = v[4]*a + b
		o[5] = v[5]*a + b
		o[6] = v[6]*a + b
		o[7] = v[7]*a + b
	}
	for ; i < len(x); i++ {
		y[i] = x[i]*a + b
	}
}

// GroupNormBackward: with x̂ = (x-mean)·rstd and per-group means ⟨·⟩ over C/G × spatial,
//
//	dβ[c] = Σ dy,  dγ[c] = Σ dy·x̂,  dx = rstd·(dy·γ - ⟨dy·γ⟩ - x̂·⟨dy·γ·x̂⟩).
//
// dx is applied per channel as dx = dy·k1 + x·k2 + k3 (the form PyTorch's CPU kernel
// uses), with k1 = rstd·γ, k2 = -rstd²·⟨dy·γ·x̂⟩, k3 = rstd·(mean·rstd·⟨dy·γ·x̂⟩ - ⟨dy·γ⟩)
// formed in float64.
func (d *cpu) GroupNormBackward(x, dy, gamma, mean, rstd, dx, dgamma, dbeta *compute.Tensor, groups int) {
	n, c, sp := gnShapes("GroupNormBackward", x, groups)
	mustSameLen("GroupNormBackward", x, dy, dx)
	mustShape("GroupNormBackward", "gamma", gamma, c)
	mustShape("GroupNormBackward", "dgamma", dgamma, c)
	mustShape("GroupNormBackward", "dbeta", dbeta, c)
	mustShape("GroupNormBackward", "mean", mean, n, groups)
	mustShape("GroupNormBackward", "rstd", rstd, n, groups)
	xs, dys, gs, ms, rs := d.data(x), d.data(dy), d.data(gamma), d.data(mean), d.data(rstd)
	dxs, dgs, dbs := d.data(dx), d.data(dgamma), d.data(dbeta)
	cpg := c / groups
	size := cpg * sp
	// Per (sample, channel) partial sums Σdy and Σdy·x̂, reduced over samples at the end
	// so that each goroutine writes only its own rows.
	sdy := make([]float64, n*c)
	sdyx := make([]float64, n*c)
	parallel(n*groups, 6*size, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			mu, rsd := float64(ms[r]), float64(rs[r])
			c0 := (r % groups) * cpg
			xg, dyg := xs[r*size:(r+1)*size], dys[r*size:(r+1)*size]
			var a, b float64 // Σ dy·γ and Σ dy·γ·x̂ over the group
			for ch := range cpg {
				s1, s2 := dySums(xg[ch*sp:(ch+1)*sp], dyg[ch*sp:(ch+1)*sp], ms[r])
				s2 *= rsd
				row := (r/groups)*c + c0 + ch
				sdy[row], sdyx[row] = s1, s2
				gm := float64(gs[c0+ch])
				a += gm * s1
				b += gm * s2
			}
			a /= float64(size)
			b /= float64(size)
			k2 := -rsd * rsd * b
			k3 := rsd * (mu*rsd*b - a)
			dxg := dxs[r*size : (r+1)*size]
			for ch := range cpg {
				k1 := rsd * float64(gs[c0+ch])
				lin32(dyg[ch*sp:(ch+1)*sp], xg[ch*sp:(ch+1)*sp], dxg[ch*sp:(ch+1)*sp],
					float32(k1), float32(k2), float32(k3))
			}
		}
	})
	for ch := range c {
		var s1, s2 float64
		for i := range n {
			s1 += sdy[i*c+ch]
			s2 += sdyx[i*c+ch]
		}
		dbs[ch], dgs[ch] = float32(s1), float32(s2)
	}
}

// dySums returns Σdy and Σdy·(x-mu) in blocks of gnBlockDy; mu is the forward's
// float32 mean, so x-mu is formed exactly as the statistics were stored.
func dySums(x, dy []float32, mu float32) (sdy, sdyx float64) {
	dy = dy[:len(x)]
	i := 0
	for ; i+gnBlockDy <= len(x); i += gnBlockDy {
		bx, bg := x[i:i+gnBlockDy:i+gnBlockDy], dy[i:i+gnBlockDy:i+gnBlockDy]
		var a0, a1, b0, b1 float32
		for j := 0; j+4 <= len(bx); j += 4 {
			v, g := bx[j:j+4:j+4], bg[j:j+4:j+4]
			a0 += g[0] + g[2]
			a1 += g[1] + g[3]
			b0 += g[0]*(v[0]-mu) + g[2]*(v[2]-mu)
			b1 += g[1]*(v[1]-mu) + g[3]*(v[3]-mu)
		}
		sdy += float64(a0) + float64(a1)
		sdyx += float64(b0) + float64(b1)
	}
	m := float64(mu)
	for ; i < len(x); i++ {
		g := float64(dy[i])
		sdy += g
		sdyx += g * (float64(x[i]) - m)
	}
	return sdy, sdyx
}

// lin32 sets out[i] = dy[i]·k1 + x[i]·k2 + k3.
func lin32(dy, x, out []float32, k1, k2, k3 float32) {
	x, out = x[:len(dy)], out[:len(dy)]
	i := 0
	for ; i+8 <= len(dy); i += 8 {
		g, v, o := dy[i:i+8:i+8], x[i:i+8:i+8], out[i:i+8:i+8]
		o[0] = g[0]*k1 + v[0]*k2 + k3
		o[1] = g[1]*k1 + v[1]*k2 + k3
		o[2] = g[2]*k1 + v[2]*k2 + k3
		o[3] = g[3]*k1 + v[3]*k2 + k3
		o[4] = g[4]*k1 + v[4]*k2 + k3
		o[5] = g[5]*k1 + v[5]*k2 + k3
		o[6] = g[6]*k1 + v[6]*k2 + k3
		o[7] = g[7]*k1 + v[7]*k2 + k3
	}
	for ; i < len(dy); i++ {
		out[i] = dy[i]*k1 + x[i]*k2 + k3
	}
}

func gnShapes(op string, x *compute.Tensor, groups int) (n, c, sp int) {
	n, c, sp = nc(op, x)
	if groups < 1 || c%groups != 0 {
		panic(fmt.Sprintf("fallback: %s: %d channels cannot form %d groups", op, c, groups))
	}
	return n, c, sp
}
