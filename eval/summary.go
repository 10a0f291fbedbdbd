package eval

import (
	"fmt"
	"math"
	"strconv"
)

// Options control Evaluate.
type Options struct {
	// Bootstrap is the number of bootstrap resamples for the confidence intervals; 0 skips
	// them (the intervals are then NaN, null in JSON). DefaultOptions uses 2000 (SPEC §5).
	Bootstrap int
	// Seed seeds the bootstrap generator.
	Seed uint64
	// Level is the confidence level of the intervals; 0 means 0.95.
	Level float64
}

// DefaultOptions are SPEC section 5's: 2000 resamples, seed 42, 95% intervals.
func DefaultOptions() Options { return Options{Bootstrap: 2000, Seed: 42, Level: 0.95} }

// Significance is the p-value below which MWSignificant is set.
const Significance = 0.05

// Summary is every metric of one score set. Its JSON keys are the ones `latentad metrics
// --json` prints and the comparison table uses.
type Summary struct {
	ROCAUC        float64  `json:"roc_auc"`
	PRAUC         float64  `json:"pr_auc"` // average precision (scikit-learn's definition)
	MWStatistic   float64  `json:"mw_statistic"`
	MWPValue      float64  `json:"mw_p_value"`
	MWSignificant bool     `json:"mw_significant"` // MWPValue < 0.05
	MWMethod      string   `json:"mw_method"`      // "exact" or "asymptotic"
	AnomalyMean   float64  `json:"anomaly_mean"`
	NormalMean    float64  `json:"normal_mean"`
	ROCAUCCI      Interval `json:"roc_auc_ci"`
	PRAUCCI       Interval `json:"pr_auc_ci"`
	// BootstrapUsed is how many resamples held both classes and entered the intervals.
	BootstrapUsed   int     `json:"bootstrap_resamples"`
	NAnomaly        int     `json:"n_anomaly"`
	NNormal         int     `json:"n_normal"`
	YoudenThreshold float64 `json:"youden_threshold"`
	Sensitivity     float64 `json:"sensitivity"`
	Specificity     float64 `json:"specificity"`
}

// Evaluate computes every metric of scores against labels (1 anomaly, 0 normal). It fails on
// a length mismatch, a label other than 0/1, a NaN or infinite score, or a single class.
func Evaluate(scores []float64, labels []int, opts Options) (Summary, error) {
	nPos, nNeg, err := checkInput(scores, labels)
	if err != nil {
		return Summary{}, err
	}
	if opts.Bootstrap < 0 {
		return Summary{}, fmt.Errorf("eval: %d bootstrap resamples; give 0 (none) or more", opts.Bootstrap)
	}
	level := opts.Level
	if level == 0 {
		level = 0.95
	}
	if !(level > 0 && level < 1) {
		return Summary{}, fmt.Errorf("eval: confidence level %v; give a number between 0 and 1, such as 0.95", opts.Level)
	}
	s := Summary{NAnomaly: nPos, NNormal: nNeg}
	if s.ROCAUC, err = ROCAUC(scores, labels); err != nil {
		return Summary{}, err
	}
	if s.PRAUC, err = AveragePrecision(scores, labels); err != nil {
		return Summary{}, err
	}
	var x, y []float64
	for i, v := range scores {
		if labels[i] == 1 {
			x = append(x, v)
		} else {
			y = append(y, v)
		}
	}
	mw, err := MannWhitneyU(x, y)
	if err != nil {
		return Summary{}, err
	}
	s.MWStatistic, s.MWPValue, s.MWMethod = mw.U, mw.P, mw.Method
	s.MWSignificant = mw.P < Significance
	if s.AnomalyMean, s.NormalMean, err = ClassMeans(scores, labels); err != nil {
		return Summary{}, err
	}
	if s.YoudenThreshold, s.Sensitivity, s.Specificity, err = Youden(scores, labels); err != nil {
		return Summary{}, err
	}
	b, err := BootstrapCI(scores, labels, opts.Bootstrap, level, opts.Seed)
	if err != nil {
		return Summary{}, err
	}
	s.ROCAUCCI, s.PRAUCCI, s.BootstrapUsed = b.ROCAUC, b.AP, b.Used
	return s, nil
}

// appendFloat formats v as the shortest decimal that reads back to the same float64.
func appendFloat(b []byte, v float64) []byte { return strconv.AppendFloat(b, v, 'g', -1, 64) }

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
