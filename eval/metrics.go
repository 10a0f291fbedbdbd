// Package eval turns per-sample anomaly scores into the numbers and pictures our users judge a
// model by (SPEC section 5): ROC curve and ROC-AUC, average precision, the one-sided
// Mann-Whitney U test, class means, percentile-bootstrap confidence intervals, sensitivity and
// specificity at the Youden threshold, selection of a setting on the validation split, the
// comparison table, scores CSV files and PNG plots.
//
// Every metric follows scikit-learn 1.2 and scipy 1.10 to round-off; the golden tests hold
// fixtures from testdata/gen_fixtures.py. Labels are 0 (normal) and 1 (anomaly); a higher score
// means more anomalous.
package eval

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// ROC is a receiver operating characteristic curve as sklearn.metrics.roc_curve returns it:
// points ordered by decreasing threshold, starting at (0, 0) with the threshold max(score)+1
// (sklearn 1.2's convention; later versions use +Inf) and ending at (1, 1) with the smallest
// score. A sample is called anomalous when its score is >= the threshold.
type ROC struct {
	FPR, TPR, Thresholds []float64
}

// group is the samples sharing one distinct score: how many positives and negatives it holds
// (weights, so that bootstrap resamples can reuse the sorted order).
type group struct {
	score  float64
	tp, fp float64
}

// checkInput validates a scores/labels pair and counts the classes.
func checkInput(scores []float64, labels []int) (nPos, nNeg int, err error) {
	if len(scores) != len(labels) {
		return 0, 0, fmt.Errorf("eval: %d scores but %d labels; give one label per score", len(scores), len(labels))
	}
	for i, s := range scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return 0, 0, fmt.Errorf("eval: score %d is %v; scores must be finite numbers", i, s)
		}
		switch labels[i] {
		case 1:
			nPos++
		case 0:
			nNeg++
		default:
			return 0, 0, fmt.Errorf("eval: label %d is %d; labels must be 0 (normal) or 1 (anomaly)", i, labels[i])
		}
	}
	if nPos == 0 || nNeg == 0 {
		return nPos, nNeg, fmt.Errorf("eval: %d anomalies and %d normals; every metric needs both classes (label 1 and label 0)", nPos, nNeg)
	}
	return nPos, nNeg, nil
}

// order returns the sample indices sorted by decreasing score (stable, like sklearn's
// mergesort on the reversed scores, though ties are grouped anyway).
func order(scores []float64) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	return idx
}

// groupsOf collapses samples in decreasing-score order into distinct-score groups, each
// sample counted w[i] times (w nil means once). Groups with zero weight are left out.
func groupsOf(scores []float64, labels []int, idx []int, w []float64, dst []group) []group {
	dst = dst[:0]
	for _, i := range idx {
		wi := 1.0
		if w != nil {
			wi = w[i]
			if wi == 0 {
				continue
			}
		}
		if n := len(dst); n == 0 || dst[n-1].score != scores[i] {
			dst = append(dst, group{score: scores[i]})
		}
		g := &dst[len(dst)-1]
		if labels[i] == 1 {
			g.tp += wi
		} else {
			g.fp += wi
		}
	}
	return dst
}

// ROCCurve computes the ROC curve like sklearn.metrics.roc_curve. With dropIntermediate it
// drops the points collinear with their neighbours as sklearn's default does (the AUC is the
// same); without, there is one point per distinct score plus the (0, 0) start.
func ROCCurve(scores []float64, labels []int, dropIntermediate bool) (ROC, error) {
	if _, _, err := checkInput(scores, labels); err != nil {
		return ROC{}, err
	}
	gs := groupsOf(scores, labels, order(scores), nil, nil)
	tps := make([]float64, len(gs))
	fps := make([]float64, len(gs))
	thr := make([]float64, len(gs))
	var tp, fp float64
	for k, g := range gs {
		tp += g.tp
		fp += g.fp
		tps[k], fps[k], thr[k] = tp, fp, g.score
	}
	if dropIntermediate && len(fps) > 2 {
		// Keep the ends and every point where either cumulative count changes slope
		// (sklearn's np.diff(_, 2) test).
		keep := 0
		for k := range fps {
			if k == 0 || k == len(fps)-1 ||
				fps[k+1]-2*fps[k]+fps[k-1] != 0 || tps[k+1]-2*tps[k]+tps[k-1] != 0 {
				tps[keep], fps[keep], thr[keep] = tps[k], fps[k], thr[k]
				keep++
			}
		}
		tps, fps, thr = tps[:keep], fps[:keep], thr[:keep]
	}
	r := ROC{
		FPR:        make([]float64, len(fps)+1),
		TPR:        make([]float64, len(tps)+1),
		Thresholds: make([]float64, len(thr)+1),
	}
	r.Thresholds[0] = thr[0] + 1
	nNeg, nPos := fps[len(fps)-1], tps[len(tps)-1]
	for k := range fps {
		r.FPR[k+1] = fps[k] / nNeg
		r.TPR[k+1] = tps[k] / nPos
		r.Thresholds[k+1] = thr[k]
	}
	return r, nil
}

// AUC is the trapezoidal area under the curve, as sklearn.metrics.auc on (FPR, TPR).
func (r ROC) AUC() float64 {
	var a float64
	for k := 1; k < len(r.FPR); k++ {
		a += (r.FPR[k] - r.FPR[k-1]) * (r.TPR[k] + r.TPR[k-1]) / 2
	}
	return a
}

// ROCAUC is sklearn.metrics.roc_auc_score for binary labels: the trapezoid over the ROC
// points of the distinct thresholds, so a tie between an anomaly and a normal counts one half.
func ROCAUC(scores []float64, labels []int) (float64, error) {
	r, err := ROCCurve(scores, labels, false)
	if err != nil {
		return math.NaN(), err
	}
	return r.AUC(), nil
}

// AveragePrecision is sklearn.metrics.average_precision_score: the step-wise sum over distinct
// thresholds (highest first) of the recall gained times the precision there, with no
// interpolation; tied scores form one threshold.
func AveragePrecision(scores []float64, labels []int) (float64, error) {
	if _, _, err := checkInput(scores, labels); err != nil {
		return math.NaN(), err
	}
	_, ap := aucAP(groupsOf(scores, labels, order(scores), nil, nil))
	return ap, nil
}

// aucAP computes ROC-AUC and average precision from distinct-score groups in decreasing
// order in one pass. Both need positives and negatives; NaN is returned otherwise.
func aucAP(gs []group) (auc, ap float64) {
	var nPos, nNeg float64
	for _, g := range gs {
		nPos += g.tp
		nNeg += g.fp
	}
	if nPos == 0 || nNeg == 0 {
		return math.NaN(), math.NaN()
	}
	var tp, fp float64
	for _, g := range gs {
		// The trapezoid under this group's ROC segment, in units of (positive, negative) pairs.
		auc += g.fp * (tp + g.tp/2)
		tp += g.tp
		fp += g.fp
		if g.tp > 0 {
			ap += g.tp / nPos * tp / (tp + fp)
		}
	}
	return auc / (nPos * nNeg), ap
}

// Youden finds the point of the full ROC curve that maximises Youden's J = TPR - FPR (the
// first, i.e. highest threshold, on ties, as numpy.argmax) and returns its threshold and the
// sensitivity (TPR) and specificity (1 - FPR) of calling score >= threshold anomalous.
// When no threshold beats chance, this is the (0, 0) start: threshold max+1, sensitivity 0.
func Youden(scores []float64, labels []int) (threshold, sensitivity, specificity float64, err error) {
	r, err := ROCCurve(scores, labels, false)
	if err != nil {
		return math.NaN(), math.NaN(), math.NaN(), err
	}
	best := 0
	for k := range r.FPR {
		if r.TPR[k]-r.FPR[k] > r.TPR[best]-r.FPR[best] {
			best = k
		}
	}
	return r.Thresholds[best], r.TPR[best], 1 - r.FPR[best], nil
}

// ClassMeans returns the mean score of the anomalies (label 1) and of the normals (label 0).
func ClassMeans(scores []float64, labels []int) (anomaly, normal float64, err error) {
	nPos, nNeg, err := checkInput(scores, labels)
	if err != nil {
		return math.NaN(), math.NaN(), err
	}
	for i, s := range scores {
		if labels[i] == 1 {
			anomaly += s
		} else {
			normal += s
		}
	}
	return anomaly / float64(nPos), normal / float64(nNeg), nil
}

// errOneClass is returned by the bootstrap when no resample held both classes.
var errOneClass = errors.New("eval: bootstrap: every resample held one class only; use more samples of each class")
