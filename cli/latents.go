package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/internal/progress"
	"github.com/latentad/latentad/nn"
)

// volumeFlags are the seed's options for reading CT volumes.
func volumeFlags() []ucli.Flag {
	return []ucli.Flag{
		stringFlag("ae_model_path", "", "autoencoder checkpoint (train-ae output or the seed's .pth) that encodes volumes"),
		stringFlag("metadata_csv", "", "metadata CSV (ID, age, sex, case[, roi_file]); folders without a row are skipped"),
		&ucli.IntSliceFlag{Name: "expected_shape", Aliases: []string{"expected-shape"}, Value: ucli.NewIntSlice(128, 128, 64), Usage: "volume shape X Y Z that every file must have, e.g. --expected_shape 128 128 64"},
		&ucli.Float64SliceFlag{Name: "hu_window", Aliases: []string{"hu-window"}, Value: ucli.NewFloat64Slice(-1000, 400), Usage: "HU window LO HI mapped to [-1, 1], e.g. --hu_window -1000 400"},
		boolFlag("apply_lv_mask", "multiply each volume by its heart_ventricle_left_roi mask"),
	}
}

// latentInputFlags are the trainers' inputs: latents, or normal volumes encoded on the fly.
func latentInputFlags() []ucli.Flag {
	return append([]ucli.Flag{
		stringFlag("latents", "", "latents: a .npy (N,C,D,H,W) or a folder with latents.npy and index.csv (from latentad extract)"),
		stringFlag("normal_root", "", "instead of --latents: a cohort folder of normal volumes (<root>/<pid>/<pid>_roi.nii.gz), encoded with --ae_model_path"),
		stringFlag("train_csv", "", "split CSV of the training patients (with --normal_root)"),
	}, volumeFlags()...)
}

// scoreInputFlags are the scorers' inputs: latents, or volumes encoded on the fly.
func scoreInputFlags() []ucli.Flag {
	return append([]ucli.Flag{
		stringFlag("latents", "", "latents to score: a .npy or a latents folder (from latentad extract)"),
		stringFlag("root", "", "instead of --latents: a cohort folder of volumes, encoded with --ae_model_path (required for --method ae_recon)"),
		stringFlag("include_csv", "", "split CSV selecting the patients of --root"),
	}, volumeFlags()...)
}

// latentSet is what scoring and training read: latents and, row for row, their identity.
type latentSet struct {
	Array  compute.Array
	Index  []data.IndexRow
	Source string          // what was read, for messages
	Cohort *data.Cohort    // when encoded from volumes
	Prep   data.Preprocess // idem
}

func preprocessFrom(c *ucli.Context) (data.Preprocess, error) {
	var p data.Preprocess
	es := c.IntSlice("expected_shape")
	if len(es) != 3 {
		return p, usageError("--expected_shape takes three numbers X Y Z, got %v", es)
	}
	copy(p.ExpectedShape[:], es)
	hw := c.Float64Slice("hu_window")
	if len(hw) != 2 || hw[0] >= hw[1] {
		return p, usageError("--hu_window takes LO,HI with LO < HI, got %v", hw)
	}
	p.HUWindow = [2]float64{hw[0], hw[1]}
	p.ApplyLVMask = c.Bool("apply_lv_mask")
	return p, nil
}

// trainingLatents reads --latents, or encodes --normal_root, caching the latents in outDir
// so that the next run with the same inputs does not encode again.
func trainingLatents(c *ucli.Context, outDir string) (*latentSet, error) {
	if p := c.String("latents"); p != "" {
		return readLatents(p)
	}
	root := c.String("normal_root")
	if root == "" {
		return nil, usageError("give --latents (from `latentad extract`) or --normal_root with --ae_model_path")
	}
	return cohortLatents(c, root, c.String("train_csv"), 0, outDir)
}

// scoringLatents reads --latents or encodes --root.
func scoringLatents(c *ucli.Context) (*latentSet, error) {
	if p := c.String("latents"); p != "" {
		return readLatents(p)
	}
	root := c.String("root")
	if root == "" {
		return nil, usageError("give --latents (from `latentad extract`) or --root with --ae_model_path")
	}
	return cohortLatents(c, root, c.String("include_csv"), -1, "")
}

func readLatents(p string) (*latentSet, error) {
	l, err := data.ReadLatents(p)
	if err != nil {
		return nil, err
	}
	if len(l.Array.Shape) != 5 {
		return nil, fmt.Errorf("%s: latents must be (N, C, D, H, W), got shape %v", p, l.Array.Shape)
	}
	if l.Array.Shape[0] == 0 {
		return nil, fmt.Errorf("%s: holds no latents", p)
	}
	return &latentSet{Array: l.Array, Index: l.Index, Source: p}, nil
}

// cohortLatents encodes a cohort with --ae_model_path; with cacheDir it keeps the result
// there under a key of every input that changes it.
func cohortLatents(c *ucli.Context, root, split string, defLabel int, cacheDir string) (*latentSet, error) {
	aePath := c.String("ae_model_path")
	if aePath == "" {
		return nil, usageError("--ae_model_path is required to encode the volumes of %s", root)
	}
	prep, err := preprocessFrom(c)
	if err != nil {
		return nil, err
	}
	cohort, err := data.ScanCohort(data.CohortOptions{Root: root, MetadataCSV: c.String("metadata_csv"), SplitCSV: split, DefaultLabel: defLabel})
	if err != nil {
		return nil, err
	}
	var cache string
	if cacheDir != "" {
		h := sha256.New()
		fmt.Fprintf(h, "%s\n%s\n%d\n%v\n", absOr(aePath), absOr(root), defLabel, prep)
		for _, f := range []string{c.String("metadata_csv"), split} {
			if b, err := os.ReadFile(f); err == nil {
				h.Write(b) // labels and the patient selection come from these files' contents
			}
		}
		for _, p := range cohort.Patients {
			fi, err := os.Stat(p.ROIPath)
			if err == nil {
				fmt.Fprintf(h, "%s %d %d\n", p.ROIPath, fi.Size(), fi.ModTime().UnixNano())
			}
		}
		if fi, err := os.Stat(aePath); err == nil {
			fmt.Fprintf(h, "%d %d\n", fi.Size(), fi.ModTime().UnixNano())
		}
		cache = filepath.Join(cacheDir, "latents_cache", hex.EncodeToString(h.Sum(nil))[:16])
		if l, err := data.ReadLatents(cache); err == nil {
			fmt.Fprintf(stderr, "using cached latents %s\n", cache)
			return &latentSet{Array: l.Array, Index: l.Index, Source: cache, Cohort: cohort, Prep: prep}, nil
		}
	}
	dev, err := openDevice(c.String("device"))
	if err != nil {
		return nil, err
	}
	ae, err := loadAE(dev, aePath)
	if err != nil {
		return nil, err
	}
	defer ae.Release()
	l, err := encodeCohort(dev, ae, cohort, prep)
	if err != nil {
		return nil, err
	}
	if cache != "" {
		if err := data.WriteLatents(cache, l); err != nil {
			fmt.Fprintf(stderr, "warning: could not cache the latents in %s: %v\n", cache, err)
		}
	}
	return &latentSet{Array: l.Array, Index: l.Index, Source: root, Cohort: cohort, Prep: prep}, nil
}

// loadAE loads a Tiny3DAE from a latentad checkpoint or the seed's .pth.
func loadAE(dev compute.Device, path string) (*nn.AE, error) {
	ck, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	if ck.Kind != "" && ck.Kind != "ae" {
		return nil, fmt.Errorf("%s is %s checkpoint, not an autoencoder (train one with `latentad train-ae`)", path, kindName(ck.Kind))
	}
	return aeFromCheckpoint(dev, ck, path)
}

// aeFromCheckpoint builds the autoencoder a checkpoint holds; its width comes from the
// weights, so the seed's .pth files (which do not record it) load too.
func aeFromCheckpoint(dev compute.Device, ck *checkpoint.Checkpoint, path string) (*nn.AE, error) {
	w, ok := ck.Model["enc.0.weight"]
	if !ok || len(w.Shape) != 5 {
		return nil, fmt.Errorf("%s: no Tiny3DAE weights (enc.0.weight missing): not an autoencoder checkpoint", path)
	}
	ae, err := nn.NewTiny3DAE(dev, w.Shape[0], 0)
	if err != nil {
		return nil, err
	}
	if err := ae.Params().LoadStateDict(ck.Model); err != nil {
		ae.Release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ae, nil
}

// velocityFromCheckpoint builds the velocity model a checkpoint holds.
func velocityFromCheckpoint(dev compute.Device, ck *checkpoint.Checkpoint, path string) (*nn.Velocity, error) {
	cfg := nn.VelocityConfigFromMap(ck.Config)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: model config %v: %w", path, ck.Config, err)
	}
	m, err := nn.NewVelocity(dev, cfg, 0)
	if err != nil {
		return nil, err
	}
	if err := m.Params().LoadStateDict(ck.Model); err != nil {
		m.Release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// loadForAE loads and preprocesses a patient's volume and checks that the autoencoder
// takes it as a batch of one; it returns the volume and that batch shape.
func loadForAE(p data.Patient, prep data.Preprocess, ae *nn.AE) (compute.Array, []int, error) {
	vol, err := p.Load(prep)
	if err != nil {
		return compute.Array{}, nil, err
	}
	shape := append([]int{1}, vol.Shape...)
	if err := ae.CheckInput(shape); err != nil {
		return compute.Array{}, nil, fmt.Errorf("patient %s (%s): %w", p.ID, p.ROIPath, err)
	}
	return vol, shape, nil
}

// encodeCohort loads, preprocesses and encodes every patient, one volume at a time.
func encodeCohort(dev compute.Device, ae *nn.AE, cohort *data.Cohort, prep data.Preprocess) (*data.Latents, error) {
	if len(cohort.Patients) == 0 {
		return nil, fmt.Errorf("%s: no patients to encode", cohort.Root)
	}
	bar := progress.New(stderr, "encode", len(cohort.Patients))
	defer bar.Done()
	var out *data.Latents
	var x *compute.Tensor
	defer func() {
		if x != nil {
			dev.Release(x)
		}
	}()
	for i, p := range cohort.Patients {
		vol, shape, err := loadForAE(p, prep, ae)
		if err != nil {
			return nil, err
		}
		if x == nil || !slices.Equal(x.Shape(), shape) {
			if x != nil {
				dev.Release(x)
			}
			x = dev.Alloc(shape...)
		}
		dev.Upload(x, vol.Data)
		z := compute.ToHost(ae.Encode(x))
		if out == nil {
			ls := ae.LatentShape(shape)
			out = &data.Latents{Array: compute.NewArray(append([]int{len(cohort.Patients)}, ls[1:]...)...)}
		}
		copy(out.Array.Data[i*len(z):], z)
		out.Index = append(out.Index, p.IndexRow())
		bar.Add(1, p.ID)
	}
	return out, nil
}
