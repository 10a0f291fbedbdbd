package devicetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/latentad/latentad/compute"
)

// testGemm covers the four transpose combinations, beta 0 (C is not read: it starts as NaN,
// as in BLAS and torch.addmm) and beta 1, on the Linear layers' shapes and odd ones.
func testGemm(t *testing.T, dev compute.Device, o Options) {
	type mnk struct{ m, n, k int }
	sizes := []mnk{{1, 1, 1}, {3, 5, 7}, {4, 64, 128}, {4, 128, 64}, {17, 13, 33}}
	if o.Small {
		sizes = []mnk{{3, 5, 7}, {4, 64, 128}}
	}
	for _, sz := range sizes {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, beta := range []float32{0, 1} {
					name := fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v/beta=%g", sz.m, sz.n, sz.k, ta, tb, beta)
					t.Run(name, func(t *testing.T) {
						e := newEnv(t, dev)
						m, n, k := sz.m, sz.n, sz.k
						const alpha = float32(-0.75)
						as, bs := e.normal(m*k, 1, 0), e.normal(k*n, 1, 0)
						// A(i,p) and B(p,j) read from storage laid out as op requires.
						aAt := func(i, p int) float64 {
							if ta {
								return float64(as[p*m+i])
							}
							return float64(as[i*k+p])
						}
						bAt := func(p, j int) float64 {
							if tb {
								return float64(bs[j*k+p])
							}
							return float64(bs[p*n+j])
						}
						ashape, bshape := []int{m, k}, []int{k, n}
						if ta {
							ashape = []int{k, m}
						}
						if tb {
							bshape = []int{n, k}
						}
						a, b := e.in("A", as, ashape...), e.in("B", bs, bshape...)
						var c *compute.Tensor
						var cs []float32
						if beta == 0 {
							c = e.out("C", m, n)
						} else {
							cs = e.normal(m*n, 1, 0)
							c = e.inout("C", cs, m, n)
						}
						want, mag := make([]float64, m*n), make([]float64, m*n)
						for i := range m {
							for j := range n {
								var s, sa float64
								for p := range k {
									s += aAt(i, p) * bAt(p, j)
									sa += math.Abs(aAt(i, p) * bAt(p, j))
								}
								want[i*n+j] = float64(alpha) * s
								mag[i*n+j] = math.Abs(float64(alpha)) * sa
								if beta != 0 {
									want[i*n+j] += float64(beta) * float64(cs[i*n+j])
									mag[i*n+j] += math.Abs(float64(beta) * float64(cs[i*n+j]))
								}
							}
						}
						dev.Gemm(ta, tb, alpha, a, b, beta, c)
						// A dot product of k terms, then the alpha and beta terms: k+2 roundings.
						e.check("Gemm", e.get(c), want, mag, sumTol(k+2))
						e.verify()
					})
				}
			}
		}
	}
}
