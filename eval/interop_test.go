package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"testing"
)

const systemPython = "/usr/bin/python3"

// TestInteropSklearnScipy compares every metric with scikit-learn and scipy, run live, on
// random score sets: sizes 1–40 per class (so scipy's exact and asymptotic paths both occur),
// with heavy ties, light ties or none, in shuffled order. It needs Debian's python3-sklearn
// and python3-scipy and skips without them; the committed golden fixtures cover the same
// ground offline.
func TestInteropSklearnScipy(t *testing.T) {
	if testing.Short() {
		t.Skip("interop with Python skipped in -short mode")
	}
	if err := exec.Command(systemPython, "-c", "import sklearn, scipy").Run(); err != nil {
		t.Skipf("%s cannot import sklearn and scipy (%v); install python3-sklearn python3-scipy to run this check", systemPython, err)
	}
	type set struct {
		Scores []float64 `json:"scores"`
		Labels []int     `json:"labels"`
	}
	rng := rand.New(rand.NewPCG(5, 5))
	var sets []set
	for k := range 60 {
		nPos, nNeg := 1+rng.IntN(40), 1+rng.IntN(40)
		if k%3 == 0 { // small samples: scipy's exact path when there are no ties
			nPos, nNeg = 1+rng.IntN(8), 1+rng.IntN(12)
		}
		var s set
		for i := range nPos + nNeg {
			l := 0
			if i < nPos {
				l = 1
			}
			v := rng.NormFloat64() + 0.8*float64(l)
			switch k % 4 {
			case 1:
				v = math.Round(v * 2) // heavy ties
			case 2:
				v = math.Round(v*20) / 20 // light ties
			}
			s.Scores = append(s.Scores, v)
			s.Labels = append(s.Labels, l)
		}
		rng.Shuffle(len(s.Scores), func(i, j int) {
			s.Scores[i], s.Scores[j] = s.Scores[j], s.Scores[i]
			s.Labels[i], s.Labels[j] = s.Labels[j], s.Labels[i]
		})
		sets = append(sets, s)
	}
	in, _ := json.Marshal(map[string]any{"sets": sets})
	cmd := exec.Command(systemPython, "testdata/interop.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderrBuf bytes.Buffer
	cmd.Stderr = &stderrBuf
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testdata/interop.py: %v\n%s", err, stderrBuf.String())
	}
	var want []struct {
		ROCAUC, AP, U, P, Thr, Sens, Spec float64
	}
	var raw []map[string]float64
	if err := json.Unmarshal(out, &raw); err != nil || len(raw) != len(sets) {
		t.Fatalf("interop output: %v (%d results for %d sets)", err, len(raw), len(sets))
	}
	for _, r := range raw {
		want = append(want, struct{ ROCAUC, AP, U, P, Thr, Sens, Spec float64 }{
			r["roc_auc"], r["average_precision"], r["mw_statistic"], r["mw_p_value"], r["youden_threshold"], r["sensitivity"], r["specificity"]})
	}
	methods := map[string]int{}
	for k, s := range sets {
		got, err := Evaluate(s.Scores, s.Labels, Options{})
		if err != nil {
			t.Fatalf("set %d: %v", k, err)
		}
		methods[got.MWMethod]++
		w := want[k]
		// Tolerances as in the golden tests (metricTol, pRelTol).
		if !closeAbs(got.ROCAUC, w.ROCAUC, metricTol) || !closeAbs(got.PRAUC, w.AP, metricTol) ||
			!closeAbs(got.MWStatistic, w.U, metricTol) || !closeRel(got.MWPValue, w.P, pRelTol) ||
			got.YoudenThreshold != w.Thr || !closeAbs(got.Sensitivity, w.Sens, 1e-12) || !closeAbs(got.Specificity, w.Spec, 1e-12) {
			t.Errorf("set %d (%d scores): got %+v; sklearn/scipy %+v", k, len(s.Scores), got, w)
		}
	}
	if methods["exact"] < 5 || methods["asymptotic"] < 5 {
		t.Errorf("Mann-Whitney paths exercised: %v; the generator should reach both", methods)
	}
}
