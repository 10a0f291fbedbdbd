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
// partial sums accumulated in float64 (kern's row kernels, see kern/gn.go: at most 16
// float32 additions per partial, inside the conformance tolerance u·(4+4√L)), rstd =
// 1/sqrt(var + eps). Each (sample, group) row is computed by one goroutine in a fixed
// order, so results do not depend on GOMAXPROCS.
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
				a, b := gnAffine(mu, rsd, gs[c0+ch], bs[c0+ch])
				kern.Affine(xg[ch*sp:(ch+1)*sp], yg[ch*sp:(ch+1)*sp], a, b)
			}
		}
	})
}

// groupStats returns one group's mean and rstd = 1/sqrt(biased variance + eps) in float64.
// GroupNormForward and GroupNormSiLU share it so that their statistics agree bit for bit.
func groupStats(xg []float32, eps float32) (mu, rsd float64) {
	mu = kern.GNSum(xg) / float64(len(xg))
	rsd = 1 / math.Sqrt(kern.GNCentredSq(xg, mu)/float64(len(xg))+float64(eps))
	return mu, rsd
}

// gnAffine returns a channel's normalisation as y = x·a + b with a = rstd·γ and
// b = β - mean·a, as PyTorch's CPU kernel does; a and b are formed in float64 so that only
// the final affine map rounds in float32.
func gnAffine(mu, rsd float64, gamma, beta float32) (a, b float32) {
	af := rsd * float64(gamma)
	return float32(af), float32(float64(beta) - mu*af)
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
				a, b := gnAffine(mu, rsd, gs[c0+ch], bs[c0+ch])
				row := (r/groups)*c + c0 + ch
				for i := row * sp; i < (row+1)*sp; i += gnChunk {
					j := min(i+gnChunk, (row+1)*sp)
					yr := ys[i:j]
					pr := yr // without pre, y holds the normalised values until SiLU overwrites them
					if ps != nil {
						pr = ps[i:j]
					}
					kern.Affine(xs[i:j], pr, a, b)
					kern.SiLU(pr, yr)
					if sbs != nil {
						addScalar(yr, sbs[row])
					}
				}
			}
		}
	})
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
				s1, s2 := kern.DySums(xg[ch*sp:(ch+1)*sp], dyg[ch*sp:(ch+1)*sp], ms[r])
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
				kern.Lin(dyg[ch*sp:(ch+1)*sp], xg[ch*sp:(ch+1)*sp], dxg[ch*sp:(ch+1)*sp],
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

func gnShapes(op string, x *compute.Tensor, groups int) (n, c, sp int) {
	n, c, sp = nc(op, x)
	if groups < 1 || c%groups != 0 {
		panic(fmt.Sprintf("fallback: %s: %d channels cannot form %d groups", op, c, groups))
	}
	return n, c, sp
}
