package eval

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestEvaluateGolden(t *testing.T) {
	for _, g := range loadGolden(t).Sets {
		s, err := Evaluate(g.Scores, g.Labels, Options{Bootstrap: 200, Seed: 1})
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		nPos := 0
		for _, l := range g.Labels {
			nPos += l
		}
		if !closeAbs(s.ROCAUC, g.ROCAUC, metricTol) || !closeAbs(s.PRAUC, g.AveragePrecision, metricTol) ||
			!closeAbs(s.MWStatistic, g.MWStatistic, metricTol) || !closeRel(s.MWPValue, g.MWPValue, pRelTol) ||
			s.MWSignificant != (g.MWPValue < 0.05) || s.MWMethod != g.MWMethod ||
			!closeRel(s.AnomalyMean, g.AnomalyMean, 1e-12) || !closeRel(s.NormalMean, g.NormalMean, 1e-12) ||
			s.NAnomaly != nPos || s.NNormal != len(g.Labels)-nPos ||
			s.YoudenThreshold != g.YoudenThreshold || !closeAbs(s.Sensitivity, g.Sensitivity, 1e-12) ||
			!closeAbs(s.Specificity, g.Specificity, 1e-12) {
			t.Errorf("%s: Evaluate = %+v; golden %+v", g.Name, s, g)
		}
		if s.BootstrapUsed == 0 || !(s.ROCAUCCI[0] <= s.ROCAUCCI[1]) || !(s.PRAUCCI[0] <= s.PRAUCCI[1]) {
			t.Errorf("%s: intervals %v %v from %d resamples", g.Name, s.ROCAUCCI, s.PRAUCCI, s.BootstrapUsed)
		}
	}
}

func TestSummaryJSON(t *testing.T) {
	g := goldenByName(t, "small_ties_6v7")
	s, err := Evaluate(g.Scores, g.Labels, Options{Bootstrap: 100, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"roc_auc", "pr_auc", "mw_statistic", "mw_p_value", "mw_significant", "anomaly_mean",
		"normal_mean", "roc_auc_ci", "pr_auc_ci", "n_anomaly", "n_normal", "youden_threshold", "sensitivity", "specificity"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s lacks key %q", b, k)
		}
	}
	if ci, ok := m["roc_auc_ci"].([]any); !ok || len(ci) != 2 {
		t.Errorf("roc_auc_ci = %v; want [lo, hi]", m["roc_auc_ci"])
	}
	var back Summary
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Errorf("round trip: %+v, %v; want %+v", back, err, s)
	}

	// Without a bootstrap the intervals are unknown: null in JSON, NaN after reading back.
	s, err = Evaluate(g.Scores, g.Labels, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal without bootstrap: %v", err)
	}
	if !strings.Contains(string(b), `"roc_auc_ci":[null,null]`) {
		t.Errorf("JSON without bootstrap %s; want \"roc_auc_ci\":[null,null]", b)
	}
	if err := json.Unmarshal(b, &back); err != nil || !math.IsNaN(back.ROCAUCCI[0]) || !math.IsNaN(back.PRAUCCI[1]) {
		t.Errorf("null intervals read back as %v %v, %v", back.ROCAUCCI, back.PRAUCCI, err)
	}
}

func TestEvaluateOptionErrors(t *testing.T) {
	s, l := []float64{1, 2, 3}, []int{0, 1, 1}
	for _, o := range []Options{{Bootstrap: -1}, {Level: 1.5}, {Level: -0.1}} {
		if _, err := Evaluate(s, l, o); err == nil {
			t.Errorf("Evaluate with %+v: no error", o)
		}
	}
}
