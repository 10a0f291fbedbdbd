package fallback

import (
	"fmt"
	"math"

	"github.com/latentad/latentad/compute"
)

// GroupNormForward follows torch.nn.functional.group_norm: per (sample, group) the mean
// and biased variance over C/G channels × spatial, computed in two passes in float64 so
// that large means do not cancel, rstd = 1/sqrt(var + eps).
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
			mu := sum64(xg) / float64(size)
			var ss float64
			for _, v := range xg {
				t := float64(v) - mu
				ss += t * t
			}
			rsd := 1 / math.Sqrt(ss/float64(size)+float64(eps))
			ms[r], rs[r] = float32(mu), float32(rsd)
			yg := ys[r*size : (r+1)*size]
			c0 := (r % groups) * cpg
			for ch := range cpg {
				// y = x·scale + shift with scale = rstd·γ, shift = β - mean·scale.
				scale := rsd * float64(gs[c0+ch])
				shift := float64(bs[c0+ch]) - mu*scale
				xr, yr := xg[ch*sp:(ch+1)*sp], yg[ch*sp:(ch+1)*sp]
				for i, v := range xr {
					yr[i] = float32(float64(v)*scale + shift)
				}
			}
		}
	})
}

// GroupNormBackward: with x̂ = (x-mean)·rstd and per-group means ⟨·⟩ over C/G × spatial,
//
//	dβ[c] = Σ dy,  dγ[c] = Σ dy·x̂,  dx = rstd·(dy·γ - ⟨dy·γ⟩ - x̂·⟨dy·γ·x̂⟩).
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
				xr, dr := xg[ch*sp:(ch+1)*sp], dyg[ch*sp:(ch+1)*sp]
				var s1, s2 float64
				for i, v := range xr {
					g := float64(dr[i])
					s1 += g
					s2 += g * (float64(v) - mu)
				}
				s2 *= rsd
				row := (r/groups)*c + c0 + ch
				sdy[row], sdyx[row] = s1, s2
				gm := float64(gs[c0+ch])
				a += gm * s1
				b += gm * s2
			}
			a /= float64(size)
			b /= float64(size)
			dxg := dxs[r*size : (r+1)*size]
			for ch := range cpg {
				gm := float64(gs[c0+ch])
				xr, dr, or := xg[ch*sp:(ch+1)*sp], dyg[ch*sp:(ch+1)*sp], dxg[ch*sp:(ch+1)*sp]
				for i, v := range xr {
					xh := (float64(v) - mu) * rsd
					or[i] = float32(rsd * (float64(dr[i])*gm - a - xh*b))
				}
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
