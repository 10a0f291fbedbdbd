package metal

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/latentad/latentad/compute"
)

// TestLongRows runs the reductions, GroupNorm and GEMM on rows longer than one pass of a
// threadgroup (256 threads, 16-wide GEMM tiles), so every strided loop runs more than once:
// a kernel that only handled its first stride would pass short conformance shapes.
func TestLongRows(t *testing.T) {
	dev := New(newDriver(t))
	r := rand.New(rand.NewPCG(3, 4))
	const n, c, s, groups = 2, 4, 300, 2
	xs := randn(r, n*c*s)
	for i := range xs {
		xs[i] = xs[i]*0.5 + 3 // a mean far from zero tests the two-pass variance
	}
	x := compute.FromHost(dev, xs, n, c, s)

	t.Run("SumChannels", func(t *testing.T) {
		want, mag := make([]float64, c), make([]float64, c)
		for i, v := range xs {
			want[i/s%c] += float64(v)
			mag[i/s%c] += math.Abs(float64(v))
		}
		out := dev.Alloc(c)
		dev.SumChannels(x, out)
		if err := closeTo(compute.ToHost(out), want, mag, sumTol(n*s)); err != nil {
			t.Error(err)
		}
	})
	t.Run("SumSpatial", func(t *testing.T) {
		want, mag := make([]float64, n*c), make([]float64, n*c)
		for i, v := range xs {
			want[i/s] += float64(v)
			mag[i/s] += math.Abs(float64(v))
		}
		out := dev.Alloc(n, c)
		dev.SumSpatial(x, out)
		if err := closeTo(compute.ToHost(out), want, mag, sumTol(s)); err != nil {
			t.Error(err)
		}
	})
	t.Run("MeanSample", func(t *testing.T) {
		want, mag := make([]float64, n), make([]float64, n)
		for i, v := range xs {
			want[i/(c*s)] += float64(v) / (c * s)
			mag[i/(c*s)] += math.Abs(float64(v)) / (c * s)
		}
		out := dev.Alloc(n)
		dev.MeanSample(x, out)
		if err := closeTo(compute.ToHost(out), want, mag, sumTol(c*s)+u); err != nil {
			t.Error(err)
		}
	})
	t.Run("GroupNorm", func(t *testing.T) {
		gamma, beta, dys := randn(r, c), randn(r, c), randn(r, n*c*s)
		L := c / groups * s
		wantY := make([]float64, len(xs))
		wantDx := make([]float64, len(xs))
		dg, db := make([]float64, c), make([]float64, c)
		dgMag, dbMag := make([]float64, c), make([]float64, c)
		for ng := 0; ng < n*groups; ng++ {
			seg := xs[ng*L : (ng+1)*L]
			mu, v := 0.0, 0.0
			for _, e := range seg {
				mu += float64(e)
			}
			mu /= float64(L)
			for _, e := range seg {
				v += (float64(e) - mu) * (float64(e) - mu)
			}
			rs := 1 / math.Sqrt(v/float64(L)+1e-5)
			m1, m2 := 0.0, 0.0
			for j := range seg {
				ch := (ng%groups)*(c/groups) + j/s
				xh := (float64(seg[j]) - mu) * rs
				d := float64(dys[ng*L+j])
				wantY[ng*L+j] = xh*float64(gamma[ch]) + float64(beta[ch])
				m1 += d * float64(gamma[ch])
				m2 += d * float64(gamma[ch]) * xh
				dg[ch] += d * xh
				db[ch] += d
				dgMag[ch] += math.Abs(d * xh)
				dbMag[ch] += math.Abs(d)
			}
			m1, m2 = m1/float64(L), m2/float64(L)
			for j := range seg {
				ch := (ng%groups)*(c/groups) + j/s
				xh := (float64(seg[j]) - mu) * rs
				wantDx[ng*L+j] = rs * (float64(dys[ng*L+j])*float64(gamma[ch]) - m1 - xh*m2)
			}
		}
		g, b := compute.FromHost(dev, gamma, c), compute.FromHost(dev, beta, c)
		dy := compute.FromHost(dev, dys, n, c, s)
		y, mean, rstd := dev.Alloc(n, c, s), dev.Alloc(n, groups), dev.Alloc(n, groups)
		dx, dgt, dbt := dev.Alloc(n, c, s), dev.Alloc(c), dev.Alloc(c)
		dev.GroupNormForward(x, g, b, y, mean, rstd, groups, 1e-5)
		dev.GroupNormBackward(x, dy, g, mean, rstd, dx, dgt, dbt, groups)
		// The normalised values and dx carry a few roundings of values of size |x̂|·|γ|
		// (plus |β|, plus the two group means for dx): 64u of that scale plus the summation
		// error of the statistics.
		ymag, dxmag := make([]float64, len(xs)), make([]float64, len(xs))
		for i := range ymag {
			ymag[i] = 1 + math.Abs(wantY[i])
			dxmag[i] = 1 + math.Abs(wantDx[i])
		}
		if err := closeTo(compute.ToHost(y), wantY, ymag, 64*u+sumTol(L)); err != nil {
			t.Errorf("forward: %v", err)
		}
		if err := closeTo(compute.ToHost(dx), wantDx, dxmag, 64*u+sumTol(L)); err != nil {
			t.Errorf("backward dx: %v", err)
		}
		if err := closeTo(compute.ToHost(dgt), dg, dgMag, 8*u+sumTol(n*s)); err != nil {
			t.Errorf("dgamma: %v", err)
		}
		if err := closeTo(compute.ToHost(dbt), db, dbMag, sumTol(n*s)); err != nil {
			t.Errorf("dbeta: %v", err)
		}
	})
	t.Run("Gemm", func(t *testing.T) {
		const m, k, nn = 20, 40, 35
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			as, bs, cs := randn(r, m*k), randn(r, k*nn), randn(r, m*nn)
			aAt := func(i, j int) float64 { // op(A)[i][j]
				if tr[0] {
					return float64(as[j*m+i])
				}
				return float64(as[i*k+j])
			}
			bAt := func(i, j int) float64 {
				if tr[1] {
					return float64(bs[j*k+i])
				}
				return float64(bs[i*nn+j])
			}
			want, mag := make([]float64, m*nn), make([]float64, m*nn)
			for i := 0; i < m; i++ {
				for j := 0; j < nn; j++ {
					acc, am := 0.0, 0.0
					for l := 0; l < k; l++ {
						acc += aAt(i, l) * bAt(l, j)
						am += math.Abs(aAt(i, l) * bAt(l, j))
					}
					want[i*nn+j] = 1.5*acc - 0.5*float64(cs[i*nn+j])
					mag[i*nn+j] = 1.5*am + 0.5*math.Abs(float64(cs[i*nn+j]))
				}
			}
			ashape, bshape := []int{m, k}, []int{k, nn}
			if tr[0] {
				ashape = []int{k, m}
			}
			if tr[1] {
				bshape = []int{nn, k}
			}
			a, b := compute.FromHost(dev, as, ashape...), compute.FromHost(dev, bs, bshape...)
			cc := compute.FromHost(dev, cs, m, nn)
			dev.Gemm(tr[0], tr[1], 1.5, a, b, -0.5, cc)
			if err := closeTo(compute.ToHost(cc), want, mag, sumTol(k+1)); err != nil {
				t.Errorf("transA=%v transB=%v: %v", tr[0], tr[1], err)
			}
		}
	})
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
}
