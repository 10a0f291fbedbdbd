package eval

import (
	"math"
	"sort"
)

// MannWhitney is the result of the one-sided Mann-Whitney U test "anomaly scores are greater
// than normal scores", as scipy.stats.mannwhitneyu(anomaly, normal, alternative='greater',
// method='auto') computes it.
type MannWhitney struct {
	// U is the statistic of the first (anomaly) sample: its rank sum minus n1(n1+1)/2, with
	// tied scores given their average rank. U / (n1·n2) is the ROC-AUC.
	U float64
	// P is the one-sided p-value.
	P float64
	// Method is "exact" or "asymptotic", chosen as scipy 1.10's method='auto' does.
	Method string
}

// MannWhitneyU runs the one-sided test on the anomaly sample x against the normal sample y.
//
// scipy 1.10's 'auto' rule (scipy/stats/_mannwhitneyu.py, _mwu_choose_method): when both
// samples have more than 8 values, the normal approximation; otherwise the exact null
// distribution unless any two of the pooled values tie, in which case again the normal
// approximation. The approximation corrects the variance for ties and applies the continuity
// correction (numerator U - n1·n2/2 - 0.5); its tail comes from math.Erfc, which keeps full
// relative precision far into the tail (p ~ 1e-20 and below).
func MannWhitneyU(x, y []float64) (MannWhitney, error) {
	scores := make([]float64, 0, len(x)+len(y))
	labels := make([]int, 0, len(x)+len(y))
	for _, v := range x {
		scores = append(scores, v)
		labels = append(labels, 1)
	}
	for _, v := range y {
		scores = append(scores, v)
		labels = append(labels, 0)
	}
	if _, _, err := checkInput(scores, labels); err != nil {
		return MannWhitney{U: math.NaN(), P: math.NaN()}, err
	}
	n1, n2 := float64(len(x)), float64(len(y))

	// Average ranks (scipy.stats.rankdata's default) and the tie term sum(t^3 - t).
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	var r1, tieTerm float64
	ties := false
	for lo := 0; lo < len(idx); {
		hi := lo + 1
		for hi < len(idx) && scores[idx[hi]] == scores[idx[lo]] {
			hi++
		}
		// Ranks lo+1 … hi share their mean.
		rank := float64(lo+1+hi) / 2
		for _, i := range idx[lo:hi] {
			if labels[i] == 1 {
				r1 += rank
			}
		}
		if t := float64(hi - lo); t > 1 {
			ties = true
			tieTerm += t*t*t - t
		}
		lo = hi
	}
	u := r1 - n1*(n1+1)/2

	res := MannWhitney{U: u}
	if (len(x) > 8 && len(y) > 8) || ties {
		res.Method = "asymptotic"
		n := n1 + n2
		sd := math.Sqrt(n1 * n2 / 12 * ((n + 1) - tieTerm/(n*(n-1))))
		// When every value ties, sd is 0 and z = -Inf: p = 1, as in scipy.
		z := (u - n1*n2/2 - 0.5) / sd
		res.P = 0.5 * math.Erfc(z/math.Sqrt2)
	} else {
		res.Method = "exact"
		res.P = exactSF(int(math.Round(u)), len(x), len(y))
	}
	res.P = math.Min(math.Max(res.P, 0), 1)
	return res, nil
}

// exactSF is P(U >= u) under the null hypothesis for samples of sizes m and n without ties.
// Like scipy, it uses the symmetry of the distribution, P(U >= u) = P(U <= m·n - u), and sums
// the null frequencies of 0 … m·n - u divided by C(m+n, m).
//
// The frequencies are the coefficients of the Gaussian binomial [m+n choose s]_q, s = min(m, n),
// built by Pascal's rule [N choose j] = [N-1 choose j] + q^(N-j)·[N-1 choose j-1] (a
// lattice-path count: the last of N sorted values is either in the other sample, adding
// nothing to U, or in this one, above N-j others). Only additions of non-negative numbers
// occur, so the counts keep full relative precision; polynomials are cut at degree m·n - u.
// The cost is O((m+n)·s·(m·n - u)), small for the sizes the 'auto' rule sends here (s <= 8).
func exactSF(u, m, n int) float64 {
	k := m*n - u
	if k < 0 {
		return 0
	}
	if u <= 0 {
		return 1
	}
	if 2*k > m*n {
		// Sum the shorter tail: P(U >= u) = 1 - P(U <= u-1) = 1 - P(U >= m·n-u+1).
		// Then p >= 1/2, so the subtraction costs no relative precision.
		return 1 - exactSF(m*n-u+1, m, n)
	}
	s := min(m, n)
	big := m + n - s
	// c[j][d] is the number of ways to place j values of the small sample among the first
	// N pooled values so that they sit above d values of the large one in total.
	c := make([][]float64, s+1)
	for j := range c {
		c[j] = make([]float64, k+1)
	}
	c[0][0] = 1
	for N := 1; N <= m+n; N++ {
		// Go downwards in j so c[j-1] still holds row N-1.
		for j := min(N, s); j >= 1; j-- {
			shift := N - j // values of the large sample below the new top value
			if shift > big {
				// Impossible placement: more large-sample values than exist below it.
				continue
			}
			prev, cur := c[j-1], c[j]
			for d := k; d >= shift; d-- {
				cur[d] += prev[d-shift]
			}
		}
	}
	var count float64
	for _, v := range c[s] {
		count += v
	}
	// C(m+n, s) as a running product; each step is exact while it stays below 2^53.
	total := 1.0
	for i := 1; i <= s; i++ {
		total = total * float64(big+i) / float64(i)
	}
	return count / total
}
