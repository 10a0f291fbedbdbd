package data

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/latentad/latentad/compute"
)

// File names of the cohort layout.
const (
	ROISuffix = "_roi.nii.gz"                     // <pid>_roi.nii.gz
	MaskFile  = "heart_ventricle_left_roi.nii.gz" // the optional LV mask
)

// CohortOptions says where a cohort is and which of its folders to take.
type CohortOptions struct {
	Root string
	// MetadataCSV, when set, gives labels and demographics; folders without a metadata
	// row are then skipped (listed in Cohort.NoMetadata).
	MetadataCSV string
	// SplitCSV, when set, keeps only the folders its ids include (see InSplit).
	SplitCSV string
	// DefaultLabel is the label of patients without metadata (e.g. 0 for --normal_root,
	// 1 for --tts_root, -1 unknown).
	DefaultLabel int
}

// Patient is one included patient folder.
type Patient struct {
	ID       string // the folder name
	Dir      string
	ROIPath  string   // <Dir>/<ID>_roi.nii.gz
	MaskPath string   // <Dir>/heart_ventricle_left_roi.nii.gz, "" when absent
	Label    int      // Meta.Case, else CohortOptions.DefaultLabel
	Meta     *MetaRow // nil without a metadata CSV
}

// Cohort is the result of ScanCohort: the included patients in sorted folder order and
// the folders left out, by reason.
type Cohort struct {
	Root       string
	Patients   []Patient
	NoROI      []string // folders without <pid>_roi.nii.gz
	NoMetadata []string // folders without a metadata row
	NotInSplit []string // folders the split CSV does not include
}

// ScanCohort lists the patient folders of opts.Root in sorted order and applies the
// metadata and split rules of SPEC.md section 1. It reads no volume. An empty result is an
// error that says what was searched and why folders were left out.
func ScanCohort(opts CohortOptions) (*Cohort, error) {
	entries, err := os.ReadDir(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("cohort root: %w", err)
	}
	var meta []MetaRow
	if opts.MetadataCSV != "" {
		if meta, err = ReadMetadata(opts.MetadataCSV); err != nil {
			return nil, err
		}
	}
	var split []string
	if opts.SplitCSV != "" {
		if split, err = ReadSplit(opts.SplitCSV); err != nil {
			return nil, err
		}
	}
	c := &Cohort{Root: opts.Root}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.IsDir() {
			names = append(names, e.Name())
		} else if e.Type()&os.ModeSymlink != 0 {
			if st, err := os.Stat(filepath.Join(opts.Root, e.Name())); err == nil && st.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	for _, pid := range names {
		dir := filepath.Join(opts.Root, pid)
		p := Patient{ID: pid, Dir: dir, ROIPath: filepath.Join(dir, pid+ROISuffix), Label: opts.DefaultLabel}
		if st, err := os.Stat(p.ROIPath); err != nil || st.IsDir() {
			c.NoROI = append(c.NoROI, pid)
			continue
		}
		if opts.SplitCSV != "" && !InSplit(pid, split) {
			c.NotInSplit = append(c.NotInSplit, pid)
			continue
		}
		if opts.MetadataCSV != "" {
			if p.Meta = MatchMetadata(pid, meta); p.Meta == nil {
				c.NoMetadata = append(c.NoMetadata, pid)
				continue
			}
			if p.Meta.Err != nil {
				return nil, fmt.Errorf("patient %s: %w", pid, p.Meta.Err)
			}
			p.Label = p.Meta.Case
		}
		if st, err := os.Stat(filepath.Join(dir, MaskFile)); err == nil && !st.IsDir() {
			p.MaskPath = filepath.Join(dir, MaskFile)
		}
		c.Patients = append(c.Patients, p)
	}
	if len(c.Patients) == 0 {
		msg := fmt.Sprintf("no patients in %s: searched its folders <pid> for <pid>%s", opts.Root, ROISuffix)
		if len(names) == 0 {
			msg += "; it has no sub-folders"
		}
		if n := len(c.NoROI); n > 0 {
			msg += fmt.Sprintf("; %d folder(s) lack that file (e.g. %s)", n, c.NoROI[0])
		}
		if n := len(c.NotInSplit); n > 0 {
			msg += fmt.Sprintf("; %d folder(s) are not listed in split CSV %s (e.g. %s)", n, opts.SplitCSV, c.NotInSplit[0])
		}
		if n := len(c.NoMetadata); n > 0 {
			msg += fmt.Sprintf("; %d folder(s) have no row in metadata CSV %s (e.g. %s)", n, opts.MetadataCSV, c.NoMetadata[0])
		}
		return c, fmt.Errorf("%s", msg)
	}
	return c, nil
}

// Skipped describes the folders left out, for a log line; "" when none.
func (c *Cohort) Skipped() string {
	var parts []string
	add := func(what string, ids []string) {
		if len(ids) == 0 {
			return
		}
		show := ids
		if len(show) > 5 {
			show = show[:5]
		}
		s := fmt.Sprintf("%d %s (%s", len(ids), what, strings.Join(show, ", "))
		if len(ids) > len(show) {
			s += ", …"
		}
		parts = append(parts, s+")")
	}
	add("without "+"<pid>"+ROISuffix, c.NoROI)
	add("not in the split CSV", c.NotInSplit)
	add("without metadata", c.NoMetadata)
	if len(parts) == 0 {
		return ""
	}
	return "skipped " + strings.Join(parts, "; ")
}

// IndexRow is the patient's row of a latents index.csv: id and label, age and sex from
// the metadata (NaN and "" without it), and the volume's path as source.
func (pt Patient) IndexRow() IndexRow {
	r := IndexRow{ID: pt.ID, Label: pt.Label, Age: math.NaN(), Source: pt.ROIPath}
	if pt.Meta != nil {
		r.Age, r.Sex = pt.Meta.Age, pt.Meta.Sex
	}
	return r
}

// Load reads and preprocesses the patient's volume (with its LV mask when p asks for it
// and the file exists). Errors name the patient and the file.
func (pt Patient) Load(p Preprocess) (compute.Array, error) {
	mask := ""
	if p.ApplyLVMask {
		mask = pt.MaskPath
	}
	a, err := LoadVolume(pt.ROIPath, mask, p)
	if err != nil {
		return compute.Array{}, fmt.Errorf("patient %s: %w", pt.ID, err)
	}
	return a, nil
}
