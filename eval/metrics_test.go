package eval

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

type goldenROC struct {
	FPR        []float64 `json:"fpr"`
	TPR        []float64 `json:"tpr"`
	Thresholds []float64 `json:"thresholds"`
}

type goldenSet struct {
	Name             string    `json:"name"`
	Scores           []float64 `json:"scores"`
	Labels           []int     `json:"labels"`
	ROCAUC           float64   `json:"roc_auc"`
	AveragePrecision float64   `json:"average_precision"`
	MWStatistic      float64   `json:"mw_statistic"`
	MWPValue         float64   `json:"mw_p_value"`
	MWMethod         string    `json:"mw_method"`
	AnomalyMean      float64   `json:"anomaly_mean"`
	NormalMean       float64   `json:"normal_mean"`
	ROCFull          goldenROC `json:"roc_full"`
	ROCDropped       goldenROC `json:"roc_dropped"`
	YoudenThreshold  float64   `json:"youden_threshold"`
	Sensitivity      float64   `json:"sensitivity"`
	Specificity      float64   `json:"specificity"`
}

type goldenFile struct {
	Sets      []goldenSet `json:"sets"`
	Quantiles []struct {
		X []float64 `json:"x"`
		Q []float64 `json:"q"`
		V []float64 `json:"v"`
	} `json:"quantiles"`
}

// loadGolden reads the fixtures written by testdata/gen_fixtures.py (sklearn 1.2, scipy 1.10).
func loadGolden(t *testing.T) goldenFile {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatalf("read fixtures (regenerate with /usr/bin/python3 eval/testdata/gen_fixtures.py): %v", err)
	}
	var g goldenFile
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("parse testdata/golden.json: %v", err)
	}
	if len(g.Sets) < 10 {
		t.Fatalf("testdata/golden.json holds %d score sets; expected the generator's full list", len(g.Sets))
	}
	return g
}

// metricTol is the acceptance tolerance for AUC, AP and U: the values are sums of at
// most a few hundred terms of size <= 1 (U: exact multiples of 0.5), so round-off is ~1e-14.
const metricTol = 1e-9

// pRelTol is the acceptance tolerance for p-values (relative). Our exact path sums
// the same integer frequencies as scipy and the asymptotic one uses Erfc like scipy's ndtr,
// so agreement is in fact far closer; 1e-3 is the contract.
const pRelTol = 1e-3

func closeAbs(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func closeRel(a, b, tol float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}

func TestGoldenMetrics(t *testing.T) {
	for _, g := range loadGolden(t).Sets {
		t.Run(g.Name, func(t *testing.T) {
			auc, err := ROCAUC(g.Scores, g.Labels)
			if err != nil || !closeAbs(auc, g.ROCAUC, metricTol) {
				t.Errorf("ROCAUC = %.17g, %v; sklearn %.17g", auc, err, g.ROCAUC)
			}
			ap, err := AveragePrecision(g.Scores, g.Labels)
			if err != nil || !closeAbs(ap, g.AveragePrecision, metricTol) {
				t.Errorf("AveragePrecision = %.17g, %v; sklearn %.17g", ap, err, g.AveragePrecision)
			}
			var x, y []float64
			for i, s := range g.Scores {
				if g.Labels[i] == 1 {
					x = append(x, s)
				} else {
					y = append(y, s)
				}
			}
			mw, err := MannWhitneyU(x, y)
			if err != nil {
				t.Fatalf("MannWhitneyU: %v", err)
			}
			if !closeAbs(mw.U, g.MWStatistic, metricTol) {
				t.Errorf("U = %.17g; scipy %.17g", mw.U, g.MWStatistic)
			}
			if !closeRel(mw.P, g.MWPValue, pRelTol) {
				t.Errorf("p = %.17g; scipy %.17g (relative error %.3g)", mw.P, g.MWPValue, math.Abs(mw.P-g.MWPValue)/g.MWPValue)
			}
			if mw.Method != g.MWMethod {
				t.Errorf("method %q; scipy's auto chose %q", mw.Method, g.MWMethod)
			}
			// U/(n1 n2) is the AUC: an independent check of both.
			if a := mw.U / float64(len(x)*len(y)); !closeAbs(a, g.ROCAUC, metricTol) {
				t.Errorf("U/(n1 n2) = %.17g; sklearn AUC %.17g", a, g.ROCAUC)
			}
			am, nm, err := ClassMeans(g.Scores, g.Labels)
			if err != nil || !closeRel(am, g.AnomalyMean, 1e-12) || !closeRel(nm, g.NormalMean, 1e-12) {
				t.Errorf("ClassMeans = %v, %v, %v; numpy %v, %v", am, nm, err, g.AnomalyMean, g.NormalMean)
			}
			thr, sens, spec, err := Youden(g.Scores, g.Labels)
			if err != nil || thr != g.YoudenThreshold || !closeAbs(sens, g.Sensitivity, 1e-12) || !closeAbs(spec, g.Specificity, 1e-12) {
				t.Errorf("Youden = %v, %v, %v, %v; sklearn curve argmax %v, %v, %v", thr, sens, spec, err, g.YoudenThreshold, g.Sensitivity, g.Specificity)
			}
		})
	}
}

func TestGoldenROCCurve(t *testing.T) {
	for _, g := range loadGolden(t).Sets {
		for _, c := range []struct {
			drop bool
			want goldenROC
		}{{false, g.ROCFull}, {true, g.ROCDropped}} {
			r, err := ROCCurve(g.Scores, g.Labels, c.drop)
			if err != nil {
				t.Fatalf("%s: ROCCurve: %v", g.Name, err)
			}
			if len(r.FPR) != len(c.want.FPR) || len(r.TPR) != len(c.want.TPR) || len(r.Thresholds) != len(c.want.Thresholds) {
				t.Errorf("%s drop=%v: %d points; sklearn %d", g.Name, c.drop, len(r.FPR), len(c.want.FPR))
				continue
			}
			for k := range r.FPR {
				// Thresholds are input scores (or max+1), so they must match exactly;
				// rates are count ratios, equal to the last bit.
				if r.Thresholds[k] != c.want.Thresholds[k] || !closeAbs(r.FPR[k], c.want.FPR[k], 1e-15) || !closeAbs(r.TPR[k], c.want.TPR[k], 1e-15) {
					t.Errorf("%s drop=%v point %d: (%v, %v, %v); sklearn (%v, %v, %v)", g.Name, c.drop, k,
						r.FPR[k], r.TPR[k], r.Thresholds[k], c.want.FPR[k], c.want.TPR[k], c.want.Thresholds[k])
				}
			}
			if !closeAbs(r.AUC(), g.ROCAUC, metricTol) {
				t.Errorf("%s drop=%v: curve AUC %v; sklearn %v", g.Name, c.drop, r.AUC(), g.ROCAUC)
			}
		}
	}
}

// The one-pass group formulas used by the bootstrap must equal the curve-based metrics.
func TestGroupFormulasMatchCurve(t *testing.T) {
	for _, g := range loadGolden(t).Sets {
		auc, ap := aucAP(groupsOf(g.Scores, g.Labels, order(g.Scores), nil, nil))
		if !closeAbs(auc, g.ROCAUC, metricTol) || !closeAbs(ap, g.AveragePrecision, metricTol) {
			t.Errorf("%s: aucAP = %v, %v; sklearn %v, %v", g.Name, auc, ap, g.ROCAUC, g.AveragePrecision)
		}
	}
}

func TestQuantileMatchesNumpy(t *testing.T) {
	g := loadGolden(t)
	if len(g.Quantiles) == 0 {
		t.Fatal("no quantile fixtures in testdata/golden.json")
	}
	for _, c := range g.Quantiles {
		for k, q := range c.Q {
			x := append([]float64(nil), c.X...)
			// numpy's lerp and ours are the same operations: equal to the last bit.
			if v := Quantile(x, q); v != c.V[k] {
				t.Errorf("Quantile(%v, %v) = %.17g; numpy %.17g", c.X, q, v, c.V[k])
			}
		}
	}
}

func TestInputErrors(t *testing.T) {
	cases := []struct {
		name   string
		scores []float64
		labels []int
	}{
		{"length mismatch", []float64{1, 2, 3}, []int{0, 1}},
		{"one class", []float64{1, 2, 3}, []int{1, 1, 1}},
		{"only normals", []float64{1, 2}, []int{0, 0}},
		{"NaN score", []float64{1, math.NaN(), 3}, []int{0, 1, 1}},
		{"Inf score", []float64{1, math.Inf(1), 3}, []int{0, 1, 1}},
		{"label 2", []float64{1, 2, 3}, []int{0, 1, 2}},
		{"empty", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ROCAUC(c.scores, c.labels); err == nil {
				t.Error("ROCAUC: no error")
			}
			if _, err := AveragePrecision(c.scores, c.labels); err == nil {
				t.Error("AveragePrecision: no error")
			}
			if _, err := Evaluate(c.scores, c.labels, DefaultOptions()); err == nil {
				t.Error("Evaluate: no error")
			}
		})
	}
}

// exactSF against a brute-force enumeration of every split of the pooled ranks.
func TestExactSFBruteForce(t *testing.T) {
	for _, c := range []struct{ m, n int }{{1, 1}, {1, 5}, {3, 4}, {4, 3}, {5, 6}, {2, 9}, {8, 3}} {
		N := c.m + c.n
		counts := make([]float64, c.m*c.n+1)
		var total float64
		for mask := 0; mask < 1<<N; mask++ {
			if popcount(mask) != c.m {
				continue
			}
			// U of the m-sample: pairs where its value (rank bit) is above an n-sample value.
			u, below := 0, 0
			for r := 0; r < N; r++ {
				if mask&(1<<r) != 0 {
					u += below
				} else {
					below++
				}
			}
			counts[u]++
			total++
		}
		tail := 0.0
		for u := c.m * c.n; u >= 0; u-- {
			tail += counts[u]
			if got := exactSF(u, c.m, c.n); !closeRel(got, tail/total, 1e-13) {
				t.Errorf("exactSF(%d, %d, %d) = %v; enumeration %v", u, c.m, c.n, got, tail/total)
			}
		}
	}
}

func popcount(x int) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
