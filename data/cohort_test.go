package data

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/latentad/latentad/data/nifti"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadMetadata(t *testing.T) {
	rows, err := ReadMetadata(filepath.Join(cohortDir, "Combined_Labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	if r.ID != "P001" || r.Age != 63 || r.Sex != "F" || r.Case != 0 || r.ROIFile != "P001_roi.nii.gz" || r.Extra["site"] != "A" || r.Line != 2 {
		t.Errorf("row 0 = %+v (BOM must not hide the ID column)", r)
	}
	if !math.IsNaN(rows[1].Age) || rows[1].Case != 1 || rows[2].Sex != "F" || rows[4].Case != 1 || rows[4].Sex != "F" {
		t.Errorf("rows = %+v", rows)
	}

	dir := t.TempDir()
	bad := []struct{ name, csv, want string }{
		{"missing columns", "ID,age,gender\nP1,3,F\n", "lacks required column(s) sex, case (it has ID, age, gender)"},
		{"empty", "", "is empty"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, "m.csv", c.csv)
			_, err := ReadMetadata(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v, want one naming %s and containing %q", err, p, c.want)
			}
		})
	}
	// Invalid values are kept in the row, and stop a scan only when a folder matches it.
	p := writeFile(t, dir, "vals.csv", "ID,age,sex,case\nP001,3,F,2\nP002,old,F,0\nQ5,4,X,1\n,5,F,0\nTTS7,1,M,1\n")
	rows, err = ReadMetadata(p)
	if err != nil || len(rows) != 4 {
		t.Fatalf("%d rows, %v (the blank-ID row must be dropped)", len(rows), err)
	}
	for i, want := range []string{"line 2: case \"2\" is not 0 (normal) or 1 (anomaly)", "line 3: age \"old\" is not a number", "line 4: sex \"X\" is not F or M", ""} {
		if got := fmt.Sprint(rows[i].Err); want == "" && rows[i].Err != nil || want != "" && !strings.Contains(got, want) {
			t.Errorf("row %d error %v, want %q", i, rows[i].Err, want)
		}
	}
	split := writeFile(t, dir, "only_tts.csv", "ID\nTTS7\n")
	if co, err := ScanCohort(CohortOptions{Root: cohortDir, MetadataCSV: p, SplitCSV: split}); err != nil || len(co.Patients) != 1 {
		t.Errorf("invalid unmatched rows stopped the scan: %v", err)
	}
	_, err = ScanCohort(CohortOptions{Root: cohortDir, MetadataCSV: p})
	if err == nil || !strings.Contains(err.Error(), "patient P001: metadata CSV "+p+" line 2: case") {
		t.Errorf("invalid matched row: %v", err)
	}
}

func TestReadSplit(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, csv string
		want      []string
	}{
		{"patient_id", "ID,patient_id\nA,P001\nB,P002\n", []string{"P001", "P002"}},
		{"ID", "site,ID\nx,TTS7\ny,\n", []string{"TTS7"}},
		{"first column", "name,other\nQ5,1\n\nZ9,2\n", []string{"Q5", "Z9"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadSplit(writeFile(t, dir, "s.csv", c.csv))
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestMatchRules(t *testing.T) {
	split := []string{"P001", "TTS7", "Q5x", ""}
	for _, c := range []struct {
		pid  string
		want bool
	}{{"P001", true}, {"P0011", true}, {"P00", true}, {"TTS7_scanB", true}, {"Q5", true}, {"Q6", false}, {"Z9", false}} {
		if got := InSplit(c.pid, split); got != c.want {
			t.Errorf("InSplit(%q) = %v, want %v", c.pid, got, c.want)
		}
	}
	rows := []MetaRow{
		{ID: "P1", Case: 0}, {ID: "P10", Case: 1}, {ID: "X", ROIFile: "sub/Q5_roi.nii.gz", Case: 1}, {ID: "Q5", Case: 0},
	}
	for _, c := range []struct {
		pid, want string
	}{
		{"P10_a", "P10"}, // the longest prefix
		{"P1", "P1"},
		{"P1_b", "P1"},
		{"Q5", "X"}, // roi_file before ID
		{"R2", ""},
	} {
		got := ""
		if m := MatchMetadata(c.pid, rows); m != nil {
			got = m.ID
		}
		if got != c.want {
			t.Errorf("MatchMetadata(%q) = %q, want %q", c.pid, got, c.want)
		}
	}
}

func TestScanCohort(t *testing.T) {
	dir := t.TempDir()
	meta := filepath.Join(cohortDir, "Combined_Labels.csv")
	cases := []struct {
		name     string
		opts     CohortOptions
		ids      []string
		labels   []int
		noMeta   []string
		notSplit []string
	}{
		{"metadata", CohortOptions{Root: cohortDir, MetadataCSV: meta},
			[]string{"P001", "P002", "Q5", "TTS7_scanB"}, []int{0, 1, 0, 1}, []string{"Z9"}, nil},
		{"no metadata", CohortOptions{Root: cohortDir, DefaultLabel: 1},
			[]string{"P001", "P002", "Q5", "TTS7_scanB", "Z9"}, []int{1, 1, 1, 1, 1}, nil, nil},
		{"split", CohortOptions{Root: cohortDir, MetadataCSV: meta, SplitCSV: writeFile(t, dir, "train.csv", "patient_id\nP002\nTTS7\nZ9\n")},
			[]string{"P002", "TTS7_scanB"}, []int{1, 1}, []string{"Z9"}, []string{"P001", "Q5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			co, err := ScanCohort(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			var labels []int
			for _, p := range co.Patients {
				ids = append(ids, p.ID)
				labels = append(labels, p.Label)
				if p.ROIPath != filepath.Join(cohortDir, p.ID, p.ID+"_roi.nii.gz") {
					t.Errorf("ROIPath %s", p.ROIPath)
				}
				if (p.MaskPath != "") != (p.ID == "P002") {
					t.Errorf("%s: MaskPath %q", p.ID, p.MaskPath)
				}
			}
			if !reflect.DeepEqual(ids, c.ids) || !reflect.DeepEqual(labels, c.labels) {
				t.Errorf("patients %v labels %v, want %v %v", ids, labels, c.ids, c.labels)
			}
			if !reflect.DeepEqual(co.NoMetadata, c.noMeta) || !reflect.DeepEqual(co.NotInSplit, c.notSplit) || !reflect.DeepEqual(co.NoROI, []string{"empty"}) {
				t.Errorf("skipped: no metadata %v, not in split %v, no ROI %v", co.NoMetadata, co.NotInSplit, co.NoROI)
			}
			if p := co.Patients[0]; p.ID == "P001" {
				r := p.IndexRow()
				withMeta := c.opts.MetadataCSV != ""
				if r.ID != "P001" || r.Label != p.Label || r.Source != p.ROIPath ||
					withMeta != (r.Age == 63 && r.Sex == "F") || withMeta == math.IsNaN(r.Age) {
					t.Errorf("IndexRow() = %+v", r)
				}
			}
			if !strings.Contains(co.Skipped(), "1 without <pid>_roi.nii.gz (empty)") {
				t.Errorf("Skipped() = %q", co.Skipped())
			}
		})
	}
	// Empty cohorts say what was searched.
	_, err := ScanCohort(CohortOptions{Root: cohortDir, SplitCSV: writeFile(t, dir, "none.csv", "ID\nnobody\n")})
	if err == nil || !strings.Contains(err.Error(), "no patients in "+cohortDir+": searched its folders <pid> for <pid>_roi.nii.gz") ||
		!strings.Contains(err.Error(), "5 folder(s) are not listed in split CSV") {
		t.Errorf("empty cohort error: %v", err)
	}
	_, err = ScanCohort(CohortOptions{Root: dir})
	if err == nil || !strings.Contains(err.Error(), "it has no sub-folders") {
		t.Errorf("empty root error: %v", err)
	}
	_, err = ScanCohort(CohortOptions{Root: cohortDir, MetadataCSV: writeFile(t, dir, "m.csv", "ID,sex\n")})
	if err == nil || !strings.Contains(err.Error(), "lacks required column(s) age, case") {
		t.Errorf("bad metadata error: %v", err)
	}
}

// TestPreprocessMatchesNumpy compares with gen_fixtures.py's numpy transcription of SPEC
// section 1. Both compute in float64 with the same operations and round once to float32,
// so the results must be bit-identical.
func TestPreprocessMatchesNumpy(t *testing.T) {
	co, err := ScanCohort(CohortOptions{Root: cohortDir})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Patient{}
	for _, p := range co.Patients {
		byID[p.ID] = p
	}
	cases := []struct {
		pid, expected string
		pp            Preprocess
	}{
		{"P001", "P001.npy", Preprocess{ExpectedShape: [3]int{6, 5, 4}}},
		{"P001", "P001_window.npy", Preprocess{HUWindow: [2]float64{-200, 600}}},
		{"P002", "P002.npy", Preprocess{}},
		{"P002", "P002_mask.npy", Preprocess{ApplyLVMask: true}},
	}
	for _, c := range cases {
		t.Run(c.expected, func(t *testing.T) {
			got, err := byID[c.pid].Load(c.pp)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Shape, []int{1, 4, 5, 6}) {
				t.Errorf("shape %v, want (1, Z, Y, X) = [1 4 5 6]", got.Shape)
			}
			sameArray(t, c.expected, got, mustNPY(t, filepath.Join("testdata/expected", c.expected)))
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "P7")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	eye := [4][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	roi := filepath.Join(pdir, "P7_roi.nii.gz")
	if err := nifti.WriteFile(roi, nifti.NewImage([]int{4, 3, 2}, nifti.Int16, make([]float64, 24), eye)); err != nil {
		t.Fatal(err)
	}
	mask := filepath.Join(pdir, MaskFile)
	if err := nifti.WriteFile(mask, nifti.NewImage([]int{4, 3, 3}, nifti.Uint8, make([]float64, 36), eye)); err != nil {
		t.Fatal(err)
	}
	pt := Patient{ID: "P7", ROIPath: roi, MaskPath: mask}
	_, err := pt.Load(Preprocess{ExpectedShape: [3]int{128, 128, 64}})
	if err == nil || !strings.Contains(err.Error(), "patient P7: "+roi+": volume has shape (4, 3, 2), expected (128, 128, 64)") {
		t.Errorf("shape mismatch: %v", err)
	}
	_, err = pt.Load(Preprocess{ApplyLVMask: true})
	if err == nil || !strings.Contains(err.Error(), "LV mask has shape [4 3 3]") {
		t.Errorf("mask mismatch: %v", err)
	}
	if _, err = pt.Load(Preprocess{HUWindow: [2]float64{400, -1000}}); err == nil || !strings.Contains(err.Error(), "--hu_window") {
		t.Errorf("bad window: %v", err)
	}
	// A truncated .nii.gz names the patient and the file.
	b, _ := os.ReadFile(roi)
	if err := os.WriteFile(roi, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = pt.Load(Preprocess{})
	if err == nil || !strings.HasPrefix(err.Error(), "patient P7: "+roi+": ") {
		t.Errorf("truncated volume: %v", err)
	}
}
