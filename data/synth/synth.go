// Package synth generates small synthetic cardiac-CT cohorts: the data of `latentad demo`
// and of tests that need volumes with known anomalies.
//
// Each patient is a CT region of interest around an ellipsoidal left ventricle: a bright
// blood pool (~300 HU) inside a myocardial wall (~100 HU), over a smooth background between
// lung (~-900 HU) and soft tissue (~-100 HU), with scanner noise. Normal hearts vary in
// size, wall thickness, orientation, position and contrast. Anomalies show apical
// ballooning, the Takotsubo shape: the apical and mid part of the ventricle dilates and its
// wall thins, while the base stays as it was; the centre of the balloon is recorded.
//
// Generate writes the cohort in the layout package data reads (SPEC.md section 1):
// <root>/<pid>/<pid>_roi.nii.gz (int16, stored as HU+1024 with scl_inter -1024), the LV mask
// <root>/<pid>/heart_ventricle_left_roi.nii.gz, Combined_Labels.csv (ID, age, sex, case,
// roi_file, lesion_x, lesion_y, lesion_z) and train.csv / val.csv / test.csv (train holds
// normals only; val and test are mixed).
package synth

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"github.com/latentad/latentad/data/nifti"
)

// FOV is the side of the cubic field of view in millimetres, whatever the voxel counts:
// smaller volumes get coarser voxels, so the anatomy keeps its proportions.
const FOV = 100.0

// Config describes a cohort to generate.
type Config struct {
	Root        string  // where patient folders and CSVs go
	AnomalyRoot string  // when set, anomalous patients' folders go here instead of Root
	Shape       [3]int  // (X, Y, Z) voxels; zero means (32, 32, 16)
	NNormal     int     // normal patients
	NAnomaly    int     // patients with apical ballooning
	TrainFrac   float64 // share of normals in train.csv; zero means 0.6
	Seed        uint64
}

// Subject is one generated patient.
type Subject struct {
	ID       string
	Case     int // 0 normal, 1 anomaly
	Age      float64
	Sex      string
	Split    string // "train", "val" or "test"
	ROIPath  string
	MaskPath string
	// Lesion is the centre of the ballooned region in voxel coordinates (x, y, z) of the
	// NIfTI volume, i.e. element [0][z][y][x] of the preprocessed (1, Z, Y, X) array
	// (fractional; round for an index). Zero for normals.
	Lesion [3]float64
	Heart  Heart
}

// Heart holds the shape parameters of one ventricle, in normalised coordinates: the
// field of view spans [-1, 1] on each axis (1 unit = FOV/2 mm).
type Heart struct {
	Center     [3]float64 // centre of the ellipsoid
	Axis       [3]float64 // unit long axis, pointing from the base to the apex
	A, B       float64    // long and short semi-axes of the epicardium
	Wall       float64    // wall thickness
	Base       float64    // the ventricle is cut at s = -Base·A (the valve plane)
	Blood, Myo float64    // HU of blood pool and myocardium
	Noise      float64    // HU standard deviation of the scanner noise
	// Balloon is the relative dilation of the apical region (0 for a normal heart).
	Balloon float64
	// BgWaves are the smooth background's components: direction·frequency and phase.
	BgWaves [3][4]float64
}

// The apical balloon is a sphere centred on the long axis at s = balloonAt·A, of radius
// B·(1 + balloonGrowth·Balloon), joined to the ventricle; its wall is thinner.
const (
	balloonAt     = 0.4
	balloonGrowth = 0.6
	balloonWall   = 0.6
)

// RandomHeart draws a heart with natural variation; anomaly adds apical ballooning.
// Each draw comes from r in a fixed order, so a seed gives the same heart everywhere.
func RandomHeart(r *rand.Rand, anomaly bool) Heart {
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }
	h := Heart{
		Center: [3]float64{u(-0.08, 0.08), u(-0.08, 0.08), u(-0.08, 0.08)},
		A:      u(0.70, 0.82),
		B:      u(0.40, 0.47),
		Wall:   u(0.15, 0.20),
		Base:   u(0.55, 0.65),
		Blood:  u(260, 340),
		Myo:    u(80, 120),
		Noise:  u(15, 25),
	}
	// The long axis points down, left and forward as in a heart ROI, tilted by up to ~15°.
	ax := [3]float64{1 + u(-0.25, 0.25), -0.6 + u(-0.25, 0.25), -0.5 + u(-0.25, 0.25)}
	n := math.Sqrt(ax[0]*ax[0] + ax[1]*ax[1] + ax[2]*ax[2])
	for i := range ax {
		h.Axis[i] = ax[i] / n
	}
	for i := range h.BgWaves {
		th, ph := u(0, 2*math.Pi), math.Acos(u(-1, 1))
		f := u(1.0, 2.5)
		h.BgWaves[i] = [4]float64{f * math.Sin(ph) * math.Cos(th), f * math.Sin(ph) * math.Sin(th), f * math.Cos(ph), u(0, 2*math.Pi)}
	}
	if anomaly {
		h.Balloon = u(0.45, 0.70)
	}
	return h
}

// LesionNorm is the balloon centre in normalised coordinates.
func (h Heart) LesionNorm() [3]float64 {
	var p [3]float64
	for i := range p {
		p[i] = h.Center[i] + balloonAt*h.A*h.Axis[i]
	}
	return p
}

// voxelOf converts a normalised coordinate to a (fractional) voxel index along an axis of n.
func voxelOf(p float64, n int) float64 { return (p+1)*float64(n)/2 - 0.5 }

// normOf is the normalised coordinate of the centre of voxel i along an axis of n.
func normOf(i, n int) float64 { return 2*(float64(i)+0.5)/float64(n) - 1 }

// LesionVoxel is the balloon centre in voxel coordinates (x, y, z) of a volume of shape.
func (h Heart) LesionVoxel(shape [3]int) [3]float64 {
	p := h.LesionNorm()
	return [3]float64{voxelOf(p[0], shape[0]), voxelOf(p[1], shape[1]), voxelOf(p[2], shape[2])}
}

// smooth is a soft inside indicator of an implicit surface f = 1 (f < 1 inside), with a
// partial-volume edge about a voxel wide.
func smooth(f, edge float64) float64 {
	t := (1 + edge - f) / (2 * edge)
	t = min(max(t, 0), 1)
	return t * t * (3 - 2*t)
}

// Render returns the volume in HU (rounded to integers, Fortran order, x fastest) and the
// LV mask (1 inside the epicardium, else 0). r draws the noise.
func (h Heart) Render(shape [3]int, r *rand.Rand) (hu, mask []float64) {
	n := shape[0] * shape[1] * shape[2]
	hu, mask = make([]float64, n), make([]float64, n)
	// The implicit function changes by about 2/(N·B) per voxel across the wall.
	edge := 2.0 / float64(min(shape[0], shape[1], shape[2])) / h.B
	i := 0
	for z := 0; z < shape[2]; z++ {
		for y := 0; y < shape[1]; y++ {
			for x := 0; x < shape[0]; x++ {
				p := [3]float64{normOf(x, shape[0]), normOf(y, shape[1]), normOf(z, shape[2])}
				var d [3]float64
				s := 0.0
				for k := range d {
					d[k] = p[k] - h.Center[k]
					s += d[k] * h.Axis[k]
				}
				rr := 0.0
				for k := range d {
					q := d[k] - s*h.Axis[k]
					rr += q * q
				}
				rad := math.Sqrt(rr)
				bg := 0.0
				for _, w := range h.BgWaves {
					bg += math.Cos(w[0]*p[0]*math.Pi + w[1]*p[1]*math.Pi + w[2]*p[2]*math.Pi + w[3])
				}
				v := -500 + 400*math.Tanh(bg)
				// Epicardium and endocardium as implicit surfaces (f < 1 inside): ellipsoids,
				// joined for an anomaly with the balloon sphere (the minimum is the union).
				ai, bi := h.A-h.Wall, h.B-h.Wall
				fo := (s/h.A)*(s/h.A) + (rad/h.B)*(rad/h.B)
				fi := (s/ai)*(s/ai) + (rad/bi)*(rad/bi)
				if h.Balloon > 0 {
					c := h.LesionNorm()
					dd := 0.0
					for k := range p {
						dd += (p[k] - c[k]) * (p[k] - c[k])
					}
					ro := h.B * (1 + balloonGrowth*h.Balloon)
					ri := ro - balloonWall*h.Wall
					fo = min(fo, dd/(ro*ro))
					fi = min(fi, dd/(ri*ri))
				}
				// The valve plane cuts the base off, softly as well.
				cut := smooth((-s)/(h.Base*h.A), edge)
				outer, inner := smooth(fo, edge)*cut, smooth(fi, edge)*cut
				v += (h.Myo-v)*outer + (h.Blood-h.Myo)*inner
				v += h.Noise * r.NormFloat64()
				hu[i] = math.Round(min(max(v, -1024), 3071))
				if fo <= 1 && -s <= h.Base*h.A {
					mask[i] = 1
				}
				i++
			}
		}
	}
	return hu, mask
}

// Affine is the voxel-to-millimetre matrix of a volume of shape, centred on the origin.
func Affine(shape [3]int) [4][4]float64 {
	var a [4][4]float64
	for i := range 3 {
		sp := FOV / float64(shape[i])
		a[i][i] = sp
		a[i][3] = -FOV/2 + sp/2
	}
	a[3][3] = 1
	return a
}

// Generate writes a cohort and returns its subjects, normals first, in ID order.
func Generate(cfg Config) ([]Subject, error) {
	if cfg.Shape == [3]int{} {
		cfg.Shape = [3]int{32, 32, 16}
	}
	if cfg.TrainFrac == 0 {
		cfg.TrainFrac = 0.6
	}
	for _, d := range cfg.Shape {
		if d < 4 || d > 512 {
			return nil, fmt.Errorf("synthetic volume shape %v: each side must be 4..512 voxels", cfg.Shape)
		}
	}
	if cfg.NNormal < 1 || cfg.NAnomaly < 0 || cfg.TrainFrac <= 0 || cfg.TrainFrac >= 1 {
		return nil, fmt.Errorf("synthetic cohort of %d normals, %d anomalies, train share %g: want ≥ 1 normal, ≥ 0 anomalies, 0 < share < 1",
			cfg.NNormal, cfg.NAnomaly, cfg.TrainFrac)
	}
	anomRoot := cfg.Root
	if cfg.AnomalyRoot != "" {
		anomRoot = cfg.AnomalyRoot
	}
	width := max(3, len(strconv.Itoa(max(cfg.NNormal, cfg.NAnomaly))))
	subs := make([]Subject, 0, cfg.NNormal+cfg.NAnomaly)
	meta := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	for i := 0; i < cfg.NNormal+cfg.NAnomaly; i++ {
		s := Subject{ID: fmt.Sprintf("normal_%0*d", width, i+1)}
		root := cfg.Root
		if i >= cfg.NNormal {
			s = Subject{ID: fmt.Sprintf("tts_%0*d", width, i-cfg.NNormal+1), Case: 1}
			root = anomRoot
		}
		s.Age = math.Round(45 + 40*meta.Float64())
		// Takotsubo mostly strikes older women.
		female := 0.5
		if s.Case == 1 {
			female = 0.85
		}
		s.Sex = "M"
		if meta.Float64() < female {
			s.Sex = "F"
		}
		dir := filepath.Join(root, s.ID)
		s.ROIPath = filepath.Join(dir, s.ID+"_roi.nii.gz")
		s.MaskPath = filepath.Join(dir, "heart_ventricle_left_roi.nii.gz")
		subs = append(subs, s)
	}
	assignSplits(subs, cfg, meta)

	// Render and write in parallel; each subject has its own generator, so the result
	// does not depend on scheduling.
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
			s := &subs[i]
			s.Heart = RandomHeart(r, s.Case == 1)
			if s.Case == 1 {
				s.Lesion = s.Heart.LesionVoxel(cfg.Shape)
			}
			errs[i] = writeSubject(s, cfg.Shape, r)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := writeCSVs(cfg, subs); err != nil {
		return nil, err
	}
	return subs, nil
}

// assignSplits puts TrainFrac of the normals (at least one) in train and shares the other
// normals and all anomalies alternately between val and test.
func assignSplits(subs []Subject, cfg Config, r *rand.Rand) {
	normals := r.Perm(cfg.NNormal)
	nTrain := max(1, int(math.Round(cfg.TrainFrac*float64(cfg.NNormal))))
	for k, i := range normals {
		switch {
		case k < nTrain:
			subs[i].Split = "train"
		case (k-nTrain)%2 == 0:
			subs[i].Split = "val"
		default:
			subs[i].Split = "test"
		}
	}
	for k, i := range r.Perm(cfg.NAnomaly) {
		subs[cfg.NNormal+i].Split = [2]string{"val", "test"}[k%2]
	}
}

func writeSubject(s *Subject, shape [3]int, r *rand.Rand) error {
	hu, mask := s.Heart.Render(shape, r)
	if err := os.MkdirAll(filepath.Dir(s.ROIPath), 0o755); err != nil {
		return err
	}
	dims := shape[:]
	im := nifti.NewImage(dims, nifti.Int16, hu, Affine(shape))
	im.SclSlope, im.SclInter = 1, -1024 // stored as HU+1024, as CT scanners often do
	im.Descrip = "latentad synthetic cardiac CT"
	if err := nifti.WriteFile(s.ROIPath, im); err != nil {
		return err
	}
	m := nifti.NewImage(dims, nifti.Uint8, mask, Affine(shape))
	m.Descrip = "latentad synthetic LV mask"
	return nifti.WriteFile(s.MaskPath, m)
}

func writeCSVs(cfg Config, subs []Subject) error {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	rows := [][]string{{"ID", "age", "sex", "case", "roi_file", "lesion_x", "lesion_y", "lesion_z"}}
	splits := map[string][][]string{}
	for _, s := range subs {
		row := []string{s.ID, strconv.FormatFloat(s.Age, 'f', -1, 64), s.Sex, strconv.Itoa(s.Case), s.ID + "_roi.nii.gz", "", "", ""}
		if s.Case == 1 {
			row[5], row[6], row[7] = f(s.Lesion[0]), f(s.Lesion[1]), f(s.Lesion[2])
		}
		rows = append(rows, row)
		splits[s.Split] = append(splits[s.Split], []string{s.ID, strconv.Itoa(s.Case)})
	}
	if err := writeCSV(filepath.Join(cfg.Root, "Combined_Labels.csv"), rows); err != nil {
		return err
	}
	for _, name := range []string{"train", "val", "test"} {
		rows := append([][]string{{"patient_id", "case"}}, splits[name]...)
		if err := writeCSV(filepath.Join(cfg.Root, name+".csv"), rows); err != nil {
			return err
		}
	}
	return nil
}

func writeCSV(path string, rows [][]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.WriteAll(rows)
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
