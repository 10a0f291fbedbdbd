package data

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// MetaRow is one row of a metadata CSV (e.g. Combined_Labels.csv).
type MetaRow struct {
	ID      string
	Age     float64 // NaN when blank
	Sex     string  // "F", "M" or "" when blank
	Case    int     // 0 normal, 1 anomaly
	ROIFile string  // "" when the column is absent or blank
	Line    int     // line in the CSV, for messages
	// Err is set when the row's age, sex or case is invalid. Such a row only stops a cohort
	// scan when a folder matches it, so unrelated rows of a shared CSV do no harm.
	Err error
	// Extra holds every other column (e.g. lesion_x) by header name.
	Extra map[string]string
}

// readCSV reads a CSV with a header row. It strips a UTF-8 BOM and surrounding spaces.
func readCSV(path string) (header []string, rows [][]string, lines []int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("CSV %s: %v", path, err)
		}
		line, _ := r.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if header == nil {
			if len(rec) > 0 {
				rec[0] = strings.TrimPrefix(rec[0], "\ufeff")
			}
			header = rec
			continue
		}
		if len(rec) == 1 && rec[0] == "" {
			continue // blank line
		}
		rows = append(rows, rec)
		lines = append(lines, line)
	}
	if header == nil {
		return nil, nil, nil, fmt.Errorf("CSV %s is empty: want a header row", path)
	}
	return header, rows, lines, nil
}

// column finds a header name, exactly first, then ignoring case; -1 when absent.
func column(header []string, name string) int {
	for i, h := range header {
		if h == name {
			return i
		}
	}
	for i, h := range header {
		if strings.EqualFold(h, name) {
			return i
		}
	}
	return -1
}

func field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}

// ReadMetadata reads a metadata CSV with columns ID, age, sex (F|M), case (0|1) and an
// optional roi_file; other columns go to MetaRow.Extra. Column names match exactly, else
// ignoring case. A blank age reads as NaN, a blank sex as "". A missing column is an error
// naming it; an invalid value is recorded in the row's Err (naming file and line); a row
// with a blank ID and no roi_file is dropped, since it can match no folder.
func ReadMetadata(path string) ([]MetaRow, error) {
	header, rows, lines, err := readCSV(path)
	if err != nil {
		return nil, err
	}
	cols := map[string]int{}
	var missing []string
	for _, name := range []string{"ID", "age", "sex", "case"} {
		if cols[name] = column(header, name); cols[name] < 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("metadata CSV %s lacks required column(s) %s (it has %s); want ID, age, sex, case and optionally roi_file",
			path, strings.Join(missing, ", "), strings.Join(header, ", "))
	}
	cols["roi_file"] = column(header, "roi_file")
	known := map[int]bool{}
	for _, i := range cols {
		known[i] = true
	}
	out := make([]MetaRow, 0, len(rows))
	for k, rec := range rows {
		m := MetaRow{ID: field(rec, cols["ID"]), ROIFile: field(rec, cols["roi_file"]), Line: lines[k], Age: math.NaN()}
		if m.ID == "" && m.ROIFile == "" {
			continue
		}
		bad := func(format string, a ...any) {
			if m.Err == nil {
				m.Err = fmt.Errorf("metadata CSV %s line %d: %s", path, m.Line, fmt.Sprintf(format, a...))
			}
		}
		if a := field(rec, cols["age"]); a != "" && !strings.EqualFold(a, "nan") {
			if m.Age, err = strconv.ParseFloat(a, 64); err != nil {
				m.Age = math.NaN()
				bad("age %q is not a number", a)
			}
		}
		switch s := strings.ToUpper(field(rec, cols["sex"])); s {
		case "F", "FEMALE":
			m.Sex = "F"
		case "M", "MALE":
			m.Sex = "M"
		case "", "NAN":
		default:
			bad("sex %q is not F or M", field(rec, cols["sex"]))
		}
		c := field(rec, cols["case"])
		if f, err := strconv.ParseFloat(c, 64); err == nil && (f == 0 || f == 1) {
			m.Case = int(f)
		} else {
			m.Case = -1
			bad("case %q is not 0 (normal) or 1 (anomaly)", c)
		}
		for i, h := range header {
			if !known[i] {
				if m.Extra == nil {
					m.Extra = map[string]string{}
				}
				m.Extra[h] = field(rec, i)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// ReadSplit reads the patient ids of a split CSV (train.csv, val.csv, test.csv): the column
// patient_id, else ID, else the first column. The first row is the header. Blank ids are
// dropped (a blank would be a prefix of every folder name).
func ReadSplit(path string) ([]string, error) {
	header, rows, _, err := readCSV(path)
	if err != nil {
		return nil, err
	}
	c := column(header, "patient_id")
	if c < 0 {
		c = column(header, "ID")
	}
	if c < 0 {
		c = 0
	}
	var ids []string
	for _, rec := range rows {
		if id := field(rec, c); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// InSplit reports whether folder pid is included by ids: its name equals an id, or either
// is a prefix of the other.
func InSplit(pid string, ids []string) bool {
	for _, id := range ids {
		if id != "" && (strings.HasPrefix(pid, id) || strings.HasPrefix(id, pid)) {
			return true
		}
	}
	return false
}

// MatchMetadata finds the metadata row of folder pid: the row whose roi_file (its base
// name) is <pid>_roi.nii.gz, else the row whose ID equals pid, else the row with the
// longest ID that is a prefix of pid (the seed only says "an ID that is a prefix"; taking
// the longest keeps P1 from claiming P10's folder). Ties go to the earlier row. Nil when
// none matches.
func MatchMetadata(pid string, rows []MetaRow) *MetaRow {
	roi := pid + ROISuffix
	for i := range rows {
		if r := rows[i].ROIFile; r != "" && baseName(r) == roi {
			return &rows[i]
		}
	}
	var best *MetaRow
	for i := range rows {
		id := rows[i].ID
		if id == "" {
			continue
		}
		if id == pid {
			return &rows[i]
		}
		if strings.HasPrefix(pid, id) && (best == nil || len(id) > len(best.ID)) {
			best = &rows[i]
		}
	}
	return best
}

// baseName is the last element of a path written with / or \ separators.
func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}
