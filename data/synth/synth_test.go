package synth

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/data/nifti"
)

var small = Config{Shape: [3]int{24, 24, 12}, NNormal: 6, NAnomaly: 4, Seed: 7}

func generate(t *testing.T, cfg Config) ([]Subject, string) {
	t.Helper()
	cfg.Root = t.TempDir()
	subs, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return subs, cfg.Root
}

// TestCohortReadsBack: what Generate writes is a cohort package data reads, with the
// labels, splits and lesion columns Generate reports.
func TestCohortReadsBack(t *testing.T) {
	subs, root := generate(t, small)
	co, err := data.ScanCohort(data.CohortOptions{Root: root, MetadataCSV: filepath.Join(root, "Combined_Labels.csv")})
	if err != nil {
		t.Fatal(err)
	}
	if len(co.Patients) != len(subs) || co.Skipped() != "" {
		t.Fatalf("%d patients (%s), generated %d", len(co.Patients), co.Skipped(), len(subs))
	}
	byID := map[string]Subject{}
	for _, s := range subs {
		byID[s.ID] = s
	}
	for _, p := range co.Patients {
		s := byID[p.ID]
		if p.Label != s.Case || p.MaskPath != s.MaskPath || p.Meta.Sex != s.Sex || p.Meta.Age != s.Age {
			t.Errorf("%s: read %+v, generated %+v", p.ID, p, s)
		}
		if s.Case == 1 {
			for k, col := range []string{"lesion_x", "lesion_y", "lesion_z"} {
				v, err := strconv.ParseFloat(p.Meta.Extra[col], 64)
				if err != nil || math.Abs(v-s.Lesion[k]) > 0.005 {
					t.Errorf("%s: %s = %q, want %.2f", p.ID, col, p.Meta.Extra[col], s.Lesion[k])
				}
			}
		} else if p.Meta.Extra["lesion_x"] != "" {
			t.Errorf("%s: a normal with a lesion", p.ID)
		}
		a, err := p.Load(data.Preprocess{ExpectedShape: small.Shape, ApplyLVMask: true})
		if err != nil {
			t.Fatal(err)
		}
		if a.Shape[1] != 12 || a.Shape[3] != 24 {
			t.Errorf("%s: preprocessed shape %v", p.ID, a.Shape)
		}
	}
	counts := map[string][2]int{}
	for _, split := range []string{"train", "val", "test"} {
		ids, err := data.ReadSplit(filepath.Join(root, split+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			c := counts[split]
			c[byID[id].Case]++
			counts[split] = c
			if byID[id].Split != split {
				t.Errorf("%s listed in %s.csv, generated for %s", id, split, byID[id].Split)
			}
		}
	}
	// 6 normals: round(0.6·6) = 4 train, then 1 val and 1 test; anomalies 2 and 2.
	if counts["train"] != [2]int{4, 0} || counts["val"] != [2]int{1, 2} || counts["test"] != [2]int{1, 2} {
		t.Errorf("split counts (normal, anomaly): %v", counts)
	}
}

func TestDeterministic(t *testing.T) {
	_, a := generate(t, small)
	_, b := generate(t, small)
	other := small
	other.Seed++
	_, c := generate(t, other)
	files, _ := filepath.Glob(filepath.Join(a, "*", "*.nii.gz"))
	files = append(files, filepath.Join(a, "Combined_Labels.csv"), filepath.Join(a, "val.csv"))
	if len(files) != 2*10+2 {
		t.Fatalf("%d files", len(files))
	}
	differs := 0
	for _, f := range files {
		rel, _ := filepath.Rel(a, f)
		fa, _ := os.ReadFile(f)
		fb, _ := os.ReadFile(filepath.Join(b, rel))
		fc, _ := os.ReadFile(filepath.Join(c, rel))
		if !bytes.Equal(fa, fb) {
			t.Errorf("%s differs between two runs with one seed", rel)
		}
		if !bytes.Equal(fa, fc) {
			differs++
		}
	}
	if differs < 20 {
		t.Errorf("only %d of %d files change with the seed", differs, len(files))
	}
}

// TestAnatomy checks the volumes look as documented: HU of blood, wall and background,
// a mask that covers the ventricle, and, for anomalies, a ballooned ventricle with blood at
// the recorded lesion centre.
func TestAnatomy(t *testing.T) {
	subs, _ := generate(t, small)
	maxNormal, minAnomaly := 0.0, math.Inf(1)
	for _, s := range subs {
		im, err := nifti.ReadFile(s.ROIPath)
		if err != nil {
			t.Fatal(err)
		}
		m, err := nifti.ReadFile(s.MaskPath)
		if err != nil {
			t.Fatal(err)
		}
		if im.Datatype != nifti.Int16 || m.Datatype != nifti.Uint8 {
			t.Errorf("%s: types %v %v", s.ID, im.Datatype, m.Datatype)
		}
		vol, bright := 0.0, 0
		var bg []float64
		for i, v := range im.Data {
			if v < -1024 || v > 3071 || v != math.Round(v) {
				t.Fatalf("%s: HU %g", s.ID, v)
			}
			if m.Data[i] > 0 {
				vol++
			} else if v > 200 {
				bright++
			} else {
				bg = append(bg, v)
			}
		}
		// Blood outside the mask would mean the mask misses the ventricle; the noise
		// (σ ≤ 25 HU) leaves the background below 200 HU.
		if bright > 0 {
			t.Errorf("%s: %d bright voxels outside the LV mask", s.ID, bright)
		}
		mean := 0.0
		for _, v := range bg {
			mean += v
		}
		mean /= float64(len(bg))
		if mean < -900 || mean > -100 {
			t.Errorf("%s: background mean %g HU", s.ID, mean)
		}
		if s.Case == 0 {
			maxNormal = max(maxNormal, vol)
			continue
		}
		minAnomaly = min(minAnomaly, vol)
		x, y, z := int(math.Round(s.Lesion[0])), int(math.Round(s.Lesion[1])), int(math.Round(s.Lesion[2]))
		if x < 0 || y < 0 || z < 0 || x >= 24 || y >= 24 || z >= 12 {
			t.Fatalf("%s: lesion %v outside the volume", s.ID, s.Lesion)
		}
		if v := im.At(x, y, z); v < 180 || m.At(x, y, z) != 1 {
			t.Errorf("%s: lesion centre %v holds %g HU, mask %g; want blood inside the LV", s.ID, s.Lesion, v, m.At(x, y, z))
		}
	}
	// The balloon enlarges the ventricle beyond the natural variation of normals.
	if minAnomaly <= 1.2*maxNormal {
		t.Errorf("smallest ballooned LV %g voxels, largest normal %g: anomalies not clearly larger", minAnomaly, maxNormal)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Shape: [3]int{2, 32, 32}, NNormal: 1},
		{NNormal: 0, NAnomaly: 3},
		{NNormal: 3, TrainFrac: 1.5},
	} {
		cfg.Root = t.TempDir()
		if _, err := Generate(cfg); err == nil {
			t.Errorf("Generate(%+v) succeeded", cfg)
		}
	}
}
