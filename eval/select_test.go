package eval

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func cand(auc, anom, norm float64) Candidate {
	return Candidate{Val: Summary{ROCAUC: auc, AnomalyMean: anom, NormalMean: norm}}
}

func TestSelect(t *testing.T) {
	cases := []struct {
		name  string
		cands []Candidate
		want  int
	}{
		{"none", nil, -1},
		{"best among right-way", []Candidate{cand(0.9, 0, 1), cand(0.7, 2, 1), cand(0.8, 2, 1)}, 2},
		{"higher AUC but wrong way loses", []Candidate{cand(0.95, 1, 1), cand(0.6, 1.1, 1)}, 1},
		{"none right way: best AUC", []Candidate{cand(0.4, 0, 1), cand(0.6, 0, 1), cand(0.5, 1, 1)}, 1},
		{"tie goes to the first", []Candidate{cand(0.5, 0, 1), cand(0.8, 2, 1), cand(0.8, 3, 1)}, 1},
		{"NaN never wins", []Candidate{cand(math.NaN(), 2, 1), cand(0.55, 2, 1)}, 1},
		{"all NaN: first", []Candidate{cand(math.NaN(), 2, 1), cand(math.NaN(), 2, 1)}, 0},
	}
	for _, c := range cases {
		if got := Select(c.cands); got != c.want {
			t.Errorf("%s: Select = %d; want %d", c.name, got, c.want)
		}
	}
}

func tableRows(t *testing.T) []Row {
	t.Helper()
	g := goldenByName(t, "ties_rounded")
	test, err := Evaluate(g.Scores, g.Labels, Options{Bootstrap: 100, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	val := test
	return []Row{
		{Method: "ae_recon", Test: test},
		{Method: "flow|mse_multi_t", Params: "K=10 t_range=[0,0.3]", Val: &val, Test: test},
	}
}

func TestTableWriters(t *testing.T) {
	rows := tableRows(t)
	var md bytes.Buffer
	if err := WriteMarkdown(&md, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(md.String(), "\n")
	// Header, rule and one line per row, each with the same number of cell separators.
	cells := func(l string) int { return strings.Count(l, "|") - strings.Count(l, `\|`) }
	if len(lines) < 2+len(rows) {
		t.Fatalf("Markdown table has %d lines:\n%s", len(lines), md.String())
	}
	for _, l := range lines[1 : 2+len(rows)] {
		if cells(l) != cells(lines[0]) {
			t.Errorf("Markdown line %q has %d separators; header %d", l, cells(l), cells(lines[0]))
		}
	}
	for _, want := range []string{`flow\|mse_multi_t`, "K=10 t_range=[0,0.3]", "0.7375", "| ae_recon | – | – |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}

	var c bytes.Buffer
	if err := WriteTableCSV(&c, rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(recs) != 3 || len(recs[0]) != len(tableCSVHeader) {
		t.Fatalf("CSV table: %v, %d records", err, len(recs))
	}
	if recs[1][2] != "" || recs[2][2] != "0.7375" || recs[2][0] != "flow|mse_multi_t" {
		t.Errorf("CSV rows %q", recs[1:])
	}

	var j bytes.Buffer
	if err := WriteTableJSON(&j, rows); err != nil {
		t.Fatal(err)
	}
	var back []Row
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || len(back) != 2 || back[0].Val != nil || *back[1].Val != *rows[1].Val || back[1].Test != rows[1].Test {
		t.Errorf("JSON table round trip: %v\n%s", err, j.String())
	}
}
