package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/internal/progress"
	"github.com/latentad/latentad/nn"
	"github.com/latentad/latentad/train"
	"github.com/latentad/latentad/viz"
)

func init() {
	register(&ucli.Command{
		Name:      "train-ae",
		Usage:     "train the Tiny3DAE autoencoder on normal volumes",
		UsageText: "latentad train-ae --normal_root normals/ --metadata_csv Combined_Labels.csv --train_csv train.csv --out_dir runs/ae",
		Description: "Reconstruction (MSE) training of the seed's Tiny3DAE (Adam, lr 1e-3) on the normal volumes.\n" +
			"Writes checkpoints like the other trainers, loss_history.csv, and recon_preview.png\n" +
			"(axial, coronal and sagittal slices; input above reconstruction).",
		Flags: append(volumeFlags()[1:],
			stringFlag("normal_root", "", "cohort folder of normal volumes (required)"),
			stringFlag("train_csv", "", "split CSV of the training patients"),
			intFlag("base", 16, "autoencoder width (the seed's base 16 gives 128 latent channels)"),
			intFlag("epochs", 20, "training epochs"),
			intFlag("batch_size", 2, "volumes per batch"),
			floatFlag("lr", 1e-3, "Adam learning rate"),
			intFlag("seed", 42, "random seed"),
			stringFlag("out_dir", "", "where checkpoints and previews go (required)"),
			intFlag("save_every", 10, "write checkpoint_epochNNN every this many epochs"),
			stringFlag("resume", "", "continue from a checkpoint or an out_dir"),
			deviceFlag(),
		),
		Action: runTrainAE,
	})
}

// aeObjective is reconstruction MSE; it ignores the random stream.
type aeObjective struct {
	dev  compute.Device
	ae   *nn.AE
	grad *compute.Tensor
}

func (o *aeObjective) Step(x *compute.Tensor, _ *rand.Rand) float64 {
	if o.grad == nil || !slices.Equal(o.grad.Shape(), x.Shape()) {
		if o.grad != nil {
			o.dev.Release(o.grad)
		}
		o.grad = o.dev.Alloc(x.Shape()...)
	}
	loss := nn.MSE(o.dev, o.ae.Forward(x), x, o.grad)
	o.ae.Backward(o.grad)
	return loss
}

// loadVolumes reads every patient of a cohort into one (N, 1, Z, Y, X) array.
func loadVolumes(cohort *data.Cohort, prep data.Preprocess) (compute.Array, error) {
	var out compute.Array
	bar := progress.New(stderr, "load", len(cohort.Patients))
	defer bar.Done()
	for i, p := range cohort.Patients {
		v, err := p.Load(prep)
		if err != nil {
			return out, err
		}
		if i == 0 {
			out = compute.NewArray(append([]int{len(cohort.Patients)}, v.Shape...)...)
		} else if !slices.Equal(v.Shape, out.Shape[1:]) {
			return out, fmt.Errorf("patient %s (%s): volume shape %v differs from the first patient's %v", p.ID, p.ROIPath, v.Shape, out.Shape[1:])
		}
		copy(out.Data[i*len(v.Data):], v.Data)
		bar.Add(1, p.ID)
	}
	return out, nil
}

func runTrainAE(c *ucli.Context) error {
	outDir, root := c.String("out_dir"), c.String("normal_root")
	if outDir == "" || root == "" {
		return usageError("--normal_root and --out_dir are required")
	}
	prep, err := preprocessFrom(c)
	if err != nil {
		return err
	}
	cohort, err := data.ScanCohort(data.CohortOptions{Root: root, MetadataCSV: c.String("metadata_csv"), SplitCSV: c.String("train_csv"), DefaultLabel: 0})
	if err != nil {
		return err
	}
	var normals []data.Patient
	for _, p := range cohort.Patients {
		if p.Label == 0 {
			normals = append(normals, p)
		}
	}
	if len(normals) == 0 {
		return fmt.Errorf("%s: no normal (case 0) patients among %d included folders", root, len(cohort.Patients))
	}
	cohort.Patients = normals
	vols, err := loadVolumes(cohort, prep)
	if err != nil {
		return err
	}
	dev, err := openDevice(c.String("device"))
	if err != nil {
		return err
	}
	defer trainingGC()()
	seed := uint64(c.Int("seed"))
	ae, err := nn.NewTiny3DAE(dev, c.Int("base"), seed)
	if err != nil {
		return usageError("%v", err)
	}
	defer ae.Release()
	if err := ae.CheckInput(append([]int{1}, vols.Shape[1:]...)); err != nil {
		return fmt.Errorf("%s: %w", root, err)
	}
	obj := &aeObjective{dev: dev, ae: ae}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "training Tiny3DAE(base %d) on %d normal volumes %v on %s\n", ae.Base(), len(normals), vols.Shape[1:], dev.Name())
	res, err := train.Run(ctx, dev, ae.Params(), obj, vols, train.Config{
		Epochs: c.Int("epochs"), BatchSize: c.Int("batch_size"), LR: c.Float64("lr"), Seed: seed,
		SaveEvery: c.Int("save_every"), OutDir: outDir, Kind: "ae", Config: map[string]int{"base": ae.Base()},
		Args: flagArgs(c), Resume: c.String("resume"), Log: stdout, Bar: stderr,
	})
	if errors.Is(err, train.ErrInterrupted) {
		return ucli.Exit(fmt.Sprintf("interrupted; the state is saved in %s — continue with --resume %s", res.Last, outDir), 130)
	}
	if err != nil {
		return err
	}
	if err := reconPreview(dev, ae, vols, filepath.Join(outDir, "recon_preview.png")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "done: %d epochs, best loss %.6f; checkpoints and recon_preview.png in %s\n", res.Epochs, res.BestLoss, outDir)
	return nil
}

// reconPreview draws the first volume above its reconstruction, through its centre.
func reconPreview(dev compute.Device, ae *nn.AE, vols compute.Array, path string) error {
	shape := append([]int{1}, vols.Shape[1:]...)
	n := compute.Numel(shape)
	x := compute.FromHost(dev, vols.Data[:n], shape...)
	defer dev.Release(x)
	rec := compute.ToHost(ae.Forward(x))
	D, H, W := shape[2], shape[3], shape[4]
	in := viz.Volume{D: D, H: H, W: W, Data: vols.Data[:n]}
	out := viz.Volume{D: D, H: H, W: W, Data: rec}
	return viz.SavePNG(path, viz.Stack(viz.Slices(in, D/2, H/2, W/2, -1, 1, nil, 0, 0), viz.Slices(out, D/2, H/2, W/2, -1, 1, nil, 0, 0)))
}
