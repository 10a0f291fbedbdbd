package fallback

import (
	"fmt"

	"github.com/latentad/latentad/compute"
)

// Gemm is the small matrix product of the Linear layers. Each element of C is a dot product
// accumulated in float64. As in BLAS, beta = 0 overwrites C without reading it, so stale
// NaNs in C do not leak into the result.
func (d *cpu) Gemm(transA, transB bool, alpha float32, a, b *compute.Tensor, beta float32, c *compute.Tensor) {
	if a.Rank() != 2 || b.Rank() != 2 || c.Rank() != 2 {
		panic(fmt.Sprintf("fallback: Gemm needs 2-D tensors, got %v, %v, %v", a, b, c))
	}
	m, k := a.Dim(0), a.Dim(1)
	if transA {
		m, k = k, m
	}
	kb, n := b.Dim(0), b.Dim(1)
	if transB {
		kb, n = n, kb
	}
	if kb != k || c.Dim(0) != m || c.Dim(1) != n {
		panic(fmt.Sprintf("fallback: Gemm(transA=%v, transB=%v): shapes %v × %v → %v do not match",
			transA, transB, a.Shape(), b.Shape(), c.Shape()))
	}
	as, bs, cs := d.data(a), d.data(b), d.data(c)
	// Strides of op(A)(i, p) and op(B)(p, j) in the row-major storage.
	ai, ap := k, 1
	if transA {
		ai, ap = 1, m
	}
	bp, bj := n, 1
	if transB {
		bp, bj = 1, k
	}
	parallel(m, n*k, func(lo, hi int) {
		acc := make([]float64, n)
		for i := lo; i < hi; i++ {
			clear(acc)
			for p := range k {
				av := float64(as[i*ai+p*ap])
				if av == 0 {
					continue
				}
				brow := bs[p*bp:]
				for j := range acc {
					acc[j] += av * float64(brow[j*bj])
				}
			}
			row := cs[i*n : (i+1)*n]
			for j := range row {
				v := float64(alpha) * acc[j]
				if beta != 0 {
					v += float64(beta) * float64(row[j])
				}
				row[j] = float32(v)
			}
		}
	})
}
