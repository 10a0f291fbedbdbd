package fallback

import "github.com/latentad/latentad/compute"

// Gemm is the small matrix product of the Linear layers. Each element of C is a dot product
// accumulated in float64. As in BLAS, beta = 0 overwrites C without reading it, so stale
// NaNs in C do not leak into the result.
func (d *cpu) Gemm(transA, transB bool, alpha float32, a, b *compute.Tensor, beta float32, c *compute.Tensor) {
	m, n, k, err := compute.GemmDims(transA, transB, a, b, c)
	if err != nil {
		panic("fallback: " + err.Error())
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
