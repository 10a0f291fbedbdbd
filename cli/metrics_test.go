package cli

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runMetricsCLI runs `latentad metrics args…` with captured output.
func runMetricsCLI(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	oldOut, oldErr := stdout, stderr
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = oldOut, oldErr }()
	code = Main(append([]string{"latentad", "metrics"}, args...))
	return code, o.String(), e.String()
}

// metricsGolden is one score set of eval's sklearn/scipy fixtures
// (eval/testdata/gen_fixtures.py), written out as a scores CSV.
type metricsGolden struct {
	Name        string    `json:"name"`
	Scores      []float64 `json:"scores"`
	Labels      []int     `json:"labels"`
	ROCAUC      float64   `json:"roc_auc"`
	AP          float64   `json:"average_precision"`
	MWStatistic float64   `json:"mw_statistic"`
	MWPValue    float64   `json:"mw_p_value"`
}

func metricsFixture(t *testing.T, name string) (metricsGolden, string) {
	t.Helper()
	b, err := os.ReadFile("../eval/testdata/golden.json")
	if err != nil {
		t.Fatalf("eval fixtures: %v", err)
	}
	var f struct{ Sets []metricsGolden }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Sets {
		if g.Name != name {
			continue
		}
		var csv strings.Builder
		csv.WriteString("label,id,score,extra\n") // columns in an unusual order, plus one unknown
		for i, s := range g.Scores {
			csv.WriteString(strconv.Itoa(g.Labels[i]) + ",p" + strconv.Itoa(i) + "," + strconv.FormatFloat(s, 'g', -1, 64) + ",x\n")
		}
		path := filepath.Join(t.TempDir(), "scores.csv")
		if err := os.WriteFile(path, []byte(csv.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return g, path
	}
	t.Fatalf("no fixture set %q", name)
	return metricsGolden{}, ""
}

func TestMetricsJSON(t *testing.T) {
	g, path := metricsFixture(t, "ties_rounded")
	code, out, errOut := runMetricsCLI(t, "--scores", path, "--json", "--bootstrap", "300", "--seed", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"roc_auc", "pr_auc", "mw_statistic", "mw_p_value", "mw_significant", "anomaly_mean",
		"normal_mean", "roc_auc_ci", "pr_auc_ci", "n_anomaly", "n_normal"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, out)
		}
	}
	// Same tolerances as eval's golden tests (the acceptance: 1e-9, p 1e-3 relative).
	num := func(k string) float64 { v, _ := m[k].(float64); return v }
	if math.Abs(num("roc_auc")-g.ROCAUC) > 1e-9 || math.Abs(num("pr_auc")-g.AP) > 1e-9 ||
		math.Abs(num("mw_statistic")-g.MWStatistic) > 1e-9 || math.Abs(num("mw_p_value")-g.MWPValue) > 1e-3*g.MWPValue {
		t.Errorf("JSON %s differs from sklearn/scipy %+v", out, g)
	}
	if m["mw_significant"] != (g.MWPValue < 0.05) {
		t.Errorf("mw_significant = %v for p = %v", m["mw_significant"], g.MWPValue)
	}
	ci, _ := m["roc_auc_ci"].([]any)
	if len(ci) != 2 || !(ci[0].(float64) <= g.ROCAUC && g.ROCAUC <= ci[1].(float64)) {
		t.Errorf("roc_auc_ci = %v around %v", m["roc_auc_ci"], g.ROCAUC)
	}
	// Seeded: the same command prints the same bytes.
	if _, again, _ := runMetricsCLI(t, "--scores", path, "--json", "--bootstrap", "300", "--seed", "7"); again != out {
		t.Errorf("two runs with seed 7 differ:\n%s\n%s", out, again)
	}
}

func TestMetricsTextAndPlot(t *testing.T) {
	g, path := metricsFixture(t, "small_exact_5v6")
	plotPath := filepath.Join(t.TempDir(), "roc.png")
	code, out, errOut := runMetricsCLI(t, "--scores", path, "--plot", plotPath, "--bootstrap", "200")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"5 anomalies, 6 normals", "ROC-AUC", strconv.FormatFloat(g.ROCAUC, 'f', 4, 64),
		"PR-AUC", "Mann-Whitney U", "exact", "95% CI", "Youden", plotPath} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatalf("--plot wrote nothing: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("--plot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 2*b.Dy()-2 {
		t.Errorf("plot is %dx%d; expected two side-by-side panels", b.Dx(), b.Dy())
	}
}

func TestMetricsBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		args []string
		code int
		want []string // fragments of stderr
	}{
		{"no --scores", nil, 2, []string{"--scores is required"}},
		{"stray argument", []string{"--scores", write("a.csv", "label,score\n1,1\n0,0\n"), "extra"}, 2, []string{"extra"}},
		{"negative bootstrap", []string{"--scores", write("b.csv", "label,score\n1,1\n0,0\n"), "--bootstrap", "-5"}, 2, []string{"--bootstrap"}},
		{"missing file", []string{"--scores", filepath.Join(dir, "nope.csv")}, 1, []string{"nope.csv"}},
		{"no label column", []string{"--scores", write("nolabel.csv", "id,score\na,1\n")}, 1, []string{"nolabel.csv", "line 1", `"label"`}},
		{"no score column", []string{"--scores", write("noscore.csv", "id,label\na,1\n")}, 1, []string{"noscore.csv", `"score"`}},
		{"non-numeric score", []string{"--scores", write("text.csv", "id,label,score\na,1,0.3\nb,0,high\n")}, 1, []string{"text.csv", "line 3", `column "score"`, `"high"`}},
		{"bad label", []string{"--scores", write("lab.csv", "id,label,score\na,yes,0.3\n")}, 1, []string{"lab.csv", "line 2", `column "label"`}},
		{"one class", []string{"--scores", write("one.csv", "id,label,score\na,0,1\nb,0,2\n")}, 1, []string{"one.csv", "label 0", "label 1"}},
		{"ragged row", []string{"--scores", write("rag.csv", "id,label,score\na,1,2\nb,0\n")}, 1, []string{"rag.csv", "line 3"}},
		{"plot into a missing directory", []string{"--scores", write("ok.csv", "label,score\n1,1\n0,0\n"), "--plot", filepath.Join(dir, "no", "x.png")}, 1, []string{"x.png"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runMetricsCLI(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d; want %d (stderr %q)", code, c.code, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if strings.Contains(errOut, "panic") || strings.Contains(out, "roc_auc") {
				t.Errorf("unexpected output: stdout %q stderr %q", out, errOut)
			}
		})
	}
}
