package eval

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"sort"
)

// Interval is a confidence interval [lo, hi]. It encodes as a two-element JSON array, with
// null for a bound that is not known (NaN, e.g. when the bootstrap was switched off).
type Interval [2]float64

// MarshalJSON writes [lo, hi], null for NaN bounds (JSON has no NaN).
func (iv Interval) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for k, v := range iv {
		if k > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
		} else {
			b = appendFloat(b, v)
		}
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads [lo, hi], null meaning NaN.
func (iv *Interval) UnmarshalJSON(data []byte) error {
	var raw [2]*float64
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	for k, p := range raw {
		iv[k] = math.NaN()
		if p != nil {
			iv[k] = *p
		}
	}
	return nil
}

// Bootstrap holds percentile-bootstrap confidence intervals of ROC-AUC and average precision.
type Bootstrap struct {
	ROCAUC, AP Interval
	// Used is the number of resamples that held both classes and entered the intervals.
	Used int
}

// BootstrapCI draws n resamples of the samples (with replacement, the same size as the data)
// from a generator seeded with seed, computes ROC-AUC and average precision on each, and
// returns the percentile intervals at the given level (0.95 for 95%).
//
// As the usual bootstrap loop of the PyTorch research code does (draw indices; if the
// resample has one class only, `continue`), a resample without both classes is skipped, not
// redrawn, so Used may be a little below n when a class is small. The bounds are the
// (1-level)/2 and (1+level)/2 quantiles of the kept values with linear interpolation between
// order statistics (numpy.percentile's default). The random stream is Go's PCG, so intervals
// are reproducible for a seed but are not numpy's draws.
func BootstrapCI(scores []float64, labels []int, n int, level float64, seed uint64) (Bootstrap, error) {
	res := Bootstrap{ROCAUC: Interval{math.NaN(), math.NaN()}, AP: Interval{math.NaN(), math.NaN()}}
	if _, _, err := checkInput(scores, labels); err != nil {
		return res, err
	}
	if n <= 0 {
		return res, nil
	}
	// Sort once; each resample is then a vector of multiplicities over the sorted samples,
	// and the metrics come from one pass over the distinct-score groups.
	idx := order(scores)
	rng := rand.New(rand.NewPCG(seed, 0x6c6174656e746164)) // "latentad"
	w := make([]float64, len(scores))
	var gs []group
	aucs := make([]float64, 0, n)
	aps := make([]float64, 0, n)
	for range n {
		clear(w)
		var pos, neg int
		for range len(scores) {
			i := rng.IntN(len(scores))
			w[i]++
			if labels[i] == 1 {
				pos++
			} else {
				neg++
			}
		}
		if pos == 0 || neg == 0 {
			continue
		}
		gs = groupsOf(scores, labels, idx, w, gs)
		auc, ap := aucAP(gs)
		aucs = append(aucs, auc)
		aps = append(aps, ap)
	}
	res.Used = len(aucs)
	if res.Used == 0 {
		return res, errOneClass
	}
	lo, hi := (1-level)/2, (1+level)/2
	res.ROCAUC = Interval{Quantile(aucs, lo), Quantile(aucs, hi)}
	res.AP = Interval{Quantile(aps, lo), Quantile(aps, hi)}
	return res, nil
}

// Quantile is numpy.quantile(x, q) with the default linear interpolation: the value at
// position q·(n-1) of the sorted data. x is sorted in place.
func Quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	sort.Float64s(x)
	pos := q * float64(len(x)-1)
	lo := int(math.Floor(pos))
	if lo >= len(x)-1 {
		return x[len(x)-1]
	}
	if lo < 0 {
		return x[0]
	}
	// numpy's _lerp: from the nearer end, so that t = 1 lands exactly on x[lo+1].
	t := pos - float64(lo)
	a, b := x[lo], x[lo+1]
	if t >= 0.5 {
		return b - (b-a)*(1-t)
	}
	return a + (b-a)*t
}
