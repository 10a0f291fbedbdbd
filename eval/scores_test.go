package eval

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadScores(t *testing.T) {
	cases := []struct {
		name, in string
		want     ScoreSet
	}{
		{"plain", "id,label,score\na,1,0.5\nb,0,-2\n",
			ScoreSet{IDs: []string{"a", "b"}, Labels: []int{1, 0}, Scores: []float64{0.5, -2}}},
		{"any order, extra columns, case, spaces, BOM, CRLF", "\ufeffScore, method ,LABEL,Id\r\n1e-3,ddpm,1.0,p1\r\n7,ddpm,0,p2\r\n",
			ScoreSet{IDs: []string{"p1", "p2"}, Labels: []int{1, 0}, Scores: []float64{1e-3, 7}}},
		{"no id column", "label,score\n0,1\n1,2\n",
			ScoreSet{IDs: []string{"", ""}, Labels: []int{0, 1}, Scores: []float64{1, 2}}},
		{"quoted fields, blank line", "id,label,score\n\"x,1\",1,3\n\n\"y\",0,4\n",
			ScoreSet{IDs: []string{"x,1", "y"}, Labels: []int{1, 0}, Scores: []float64{3, 4}}},
	}
	for _, c := range cases {
		got, err := ReadScores(strings.NewReader(c.in), "s.csv")
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}

func TestReadScoresErrors(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string // every fragment must appear in the message
	}{
		{"empty", "", []string{"s.csv", "empty", "header"}},
		{"no label column", "id,score\na,1\n", []string{"s.csv", "line 1", `"label"`, "found: id, score"}},
		{"no score column", "id,label,value\na,1,2\n", []string{"line 1", `"score"`}},
		{"duplicate score", "score,label,score\n1,1,1\n", []string{"line 1", "twice"}},
		{"non-numeric score", "id,label,score\na,1,0.5\nb,0,abc\n", []string{"s.csv", "line 3", `column "score"`, `"abc"`}},
		{"empty score", "id,label,score\na,1,\n", []string{"line 2", `column "score"`}},
		{"NaN score", "id,label,score\na,1,NaN\n", []string{"line 2", "finite"}},
		{"infinite score", "id,label,score\na,1,1e400\n", []string{"line 2", "finite"}},
		{"label 2", "id,label,score\na,1,1\nb,2,1\n", []string{"line 3", `column "label"`, `"2"`, "0"}},
		{"label text", "id,label,score\na,TTS,1\n", []string{"line 2", `column "label"`, `"TTS"`}},
		{"short row", "id,label,score\na,1\n", []string{"s.csv", "line 2", "fields"}},
		{"header only", "id,label,score\n", []string{"no data rows"}},
		{"bad quote", "id,label,score\n\"a,1,2\n", []string{"s.csv", "line"}},
	}
	for _, c := range cases {
		_, err := ReadScores(strings.NewReader(c.in), "s.csv")
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
}

func TestScoresRoundTrip(t *testing.T) {
	g := goldenByName(t, "continuous_50v70")
	s := ScoreSet{Labels: g.Labels, Scores: g.Scores, IDs: make([]string, len(g.Scores))}
	for i := range s.IDs {
		s.IDs[i] = "pid_" + strings.Repeat("x", i%3)
	}
	path := filepath.Join(t.TempDir(), "scores.csv")
	if err := WriteScoresCSV(path, s); err != nil {
		t.Fatal(err)
	}
	back, err := ReadScoresCSV(path)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("round trip differs: %v", err)
	}
	var buf bytes.Buffer
	if err := WriteScores(&buf, ScoreSet{Labels: []int{1}, Scores: []float64{1, 2}}); err == nil {
		t.Error("WriteScores with mismatched lengths: no error")
	}
	if _, err := ReadScoresCSV(filepath.Join(t.TempDir(), "missing.csv")); err == nil || !strings.Contains(err.Error(), "missing.csv") {
		t.Errorf("missing file: %v", err)
	}
}
