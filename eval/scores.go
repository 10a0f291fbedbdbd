package eval

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/latentad/latentad/internal/atomicfile"
)

// ScoreSet is the content of a scores CSV: one row per sample.
type ScoreSet struct {
	IDs    []string // empty strings when the file has no id column
	Labels []int    // 1 anomaly, 0 normal
	Scores []float64
}

// Len is the number of samples.
func (s ScoreSet) Len() int { return len(s.Scores) }

// ReadScoresCSV reads a scores CSV file; see ReadScores.
func ReadScoresCSV(path string) (ScoreSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return ScoreSet{}, fmt.Errorf("scores CSV: %w", err)
	}
	defer f.Close()
	return ReadScores(f, path)
}

// ReadScores reads `id,label,score` rows. The header line is required; columns are found by
// name (case and surrounding spaces ignored), in any order; `label` and `score` must be there,
// `id` is optional, and other columns are ignored. Labels must be 0 or 1 (1.0 and 0.0 are
// accepted), scores finite numbers. name labels errors, which give the line and column.
func ReadScores(r io.Reader, name string) (ScoreSet, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return ScoreSet{}, fmt.Errorf("%s: the file is empty; a scores CSV starts with a header line such as id,label,score", name)
	}
	if err != nil {
		return ScoreSet{}, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	var found []string
	for k, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		found = append(found, h)
		if _, dup := col[h]; dup && (h == "id" || h == "label" || h == "score") {
			return ScoreSet{}, fmt.Errorf("%s: line 1: column %q appears twice in the header; keep one", name, h)
		}
		col[h] = k
	}
	for _, need := range []string{"label", "score"} {
		if _, ok := col[need]; !ok {
			return ScoreSet{}, fmt.Errorf("%s: line 1: no %q column in the header (found: %s); a scores CSV needs the columns label and score, and optionally id",
				name, need, strings.Join(found, ", "))
		}
	}
	idCol, hasID := col["id"]
	labelCol, scoreCol := col["label"], col["score"]

	var s ScoreSet
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return ScoreSet{}, fmt.Errorf("%s: line %d: %v (the header has %d columns)", name, pe.Line, pe.Err, len(header))
			}
			return ScoreSet{}, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		id := ""
		if hasID {
			id = rec[idCol]
		}
		lv := strings.TrimSpace(rec[labelCol])
		lf, err := strconv.ParseFloat(lv, 64)
		if err != nil || (lf != 0 && lf != 1) {
			return ScoreSet{}, fmt.Errorf("%s: line %d, column \"label\": %q is not a label; use 1 for an anomaly and 0 for a normal sample", name, line, lv)
		}
		sv := strings.TrimSpace(rec[scoreCol])
		sf, err := strconv.ParseFloat(sv, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return ScoreSet{}, fmt.Errorf("%s: line %d, column \"score\": %q is not a number", name, line, sv)
		}
		if math.IsNaN(sf) || math.IsInf(sf, 0) {
			return ScoreSet{}, fmt.Errorf("%s: line %d, column \"score\": %q is not a finite number; every score must be finite", name, line, sv)
		}
		s.IDs = append(s.IDs, id)
		s.Labels = append(s.Labels, int(lf))
		s.Scores = append(s.Scores, sf)
	}
	if s.Len() == 0 {
		return ScoreSet{}, fmt.Errorf("%s: no data rows after the header; expected one row per sample", name)
	}
	return s, nil
}

// WriteScores writes s as `id,label,score` with a header; scores are written in the shortest
// form that reads back to the same float64.
func WriteScores(w io.Writer, s ScoreSet) error {
	if len(s.Labels) != len(s.Scores) || (s.IDs != nil && len(s.IDs) != len(s.Scores)) {
		return fmt.Errorf("eval: write scores: %d ids, %d labels, %d scores; they must be the same length", len(s.IDs), len(s.Labels), len(s.Scores))
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"id", "label", "score"}); err != nil {
		return err
	}
	for i, v := range s.Scores {
		id := ""
		if s.IDs != nil {
			id = s.IDs[i]
		}
		if err := cw.Write([]string{id, strconv.Itoa(s.Labels[i]), strconv.FormatFloat(v, 'g', -1, 64)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteScoresCSV writes s to the file at path (see WriteScores), atomically.
func WriteScoresCSV(path string, s ScoreSet) error {
	return atomicfile.Write(path, func(w io.Writer) error { return WriteScores(w, s) })
}
