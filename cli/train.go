package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/ddpm"
	"github.com/latentad/latentad/flow"
	"github.com/latentad/latentad/nn"
	"github.com/latentad/latentad/train"
)

func modelFlags() []ucli.Flag {
	return []ucli.Flag{
		intFlag("base_channels", 64, "channels inside the velocity network"),
		intFlag("time_dim", 128, "size of the sinusoidal time embedding"),
		intFlag("num_res_blocks", 4, "residual blocks"),
	}
}

func trainFlags() []ucli.Flag {
	return append(modelFlags(),
		intFlag("epochs", 100, "training epochs"),
		intFlag("batch_size", 4, "latents per batch"),
		floatFlag("lr", 1e-4, "Adam learning rate"),
		intFlag("seed", 42, "random seed (shuffling, t, noise)"),
		stringFlag("out_dir", "", "where checkpoints and loss_history.csv go (required)"),
		intFlag("save_every", 10, "write checkpoint_epochNNN every this many epochs"),
		stringFlag("resume", "", "continue from a checkpoint (or an out_dir with last.safetensors), exactly as if never stopped"),
		deviceFlag(),
	)
}

func init() {
	register(&ucli.Command{
		Name:      "train-fm",
		Usage:     "train the latent velocity model by flow matching on normal latents",
		UsageText: "latentad train-fm --latents normal_latents/ --out_dir runs/fm [--epochs 100 --batch_size 4 --lr 1e-4]",
		Description: "Learns v(z_t, t) on straight paths z_t = (1-t)·z0 + t·z1 from the normal latents z0\n" +
			"to Gaussian noise z1. Writes checkpoint_epochNNN, best_model, model and last\n" +
			"(.safetensors, PyTorch key names) and loss_history.csv to --out_dir. Ctrl-C saves\n" +
			"last.safetensors; --resume continues from it.",
		Flags:  append(latentInputFlags(), trainFlags()...),
		Action: func(c *ucli.Context) error { return runTrain(c, "fm") },
	})
	register(&ucli.Command{
		Name:      "train-ddpm",
		Usage:     "train the latent noise-prediction model as a DDPM on normal latents",
		UsageText: "latentad train-ddpm --latents normal_latents/ --out_dir runs/ddpm [--timesteps 1000 --schedule_type cosine]",
		Description: "Learns ε̂(z_t, t/T) with z_t = sqrt(ᾱ_t)·z0 + sqrt(1-ᾱ_t)·ε. Same outputs as train-fm,\n" +
			"and the checkpoints carry the noise schedule.",
		Flags: append(append(latentInputFlags(), trainFlags()...),
			intFlag("timesteps", 1000, "diffusion steps T"),
			stringFlag("schedule_type", "cosine", "noise schedule: cosine or linear"),
		),
		Action: func(c *ucli.Context) error { return runTrain(c, "ddpm") },
	})
}

func runTrain(c *ucli.Context, kind string) error {
	outDir := c.String("out_dir")
	if outDir == "" {
		return usageError("--out_dir is required: the folder for checkpoints and the loss history")
	}
	lat, err := trainingLatents(c, outDir)
	if err != nil {
		return err
	}
	if len(lat.Array.Shape) != 5 {
		return fmt.Errorf("%s: latents must be (N, C, D, H, W), got shape %v", lat.Source, lat.Array.Shape)
	}
	cfg := nn.VelocityConfig{
		InChannels:   lat.Array.Shape[1],
		BaseChannels: c.Int("base_channels"),
		TimeDim:      c.Int("time_dim"),
		NumResBlocks: c.Int("num_res_blocks"),
	}
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	var sch *ddpm.Schedule
	if kind == "ddpm" {
		if sch, err = ddpm.NewSchedule(c.String("schedule_type"), c.Int("timesteps")); err != nil {
			return usageError("%v", err)
		}
	}
	dev, err := openDevice(c.String("device"))
	if err != nil {
		return err
	}
	defer trainingGC()()
	seed := uint64(c.Int("seed"))
	model, err := nn.NewVelocity(dev, cfg, seed)
	if err != nil {
		return err
	}
	defer model.Release()
	var obj train.Objective
	var schedule *checkpoint.Schedule
	if kind == "fm" {
		tr := flow.NewTrainer(dev, model)
		defer tr.Release()
		obj = tr
	} else {
		tr := ddpm.NewTrainer(dev, model, sch)
		defer tr.Release()
		obj = tr
		schedule = &checkpoint.Schedule{Timesteps: sch.Timesteps, Type: sch.Type}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "training %s on %d latents %v on %s: %d parameters\n", kind, lat.Array.Shape[0], lat.Array.Shape[1:], dev.Name(), model.Params().Count())
	res, err := train.Run(ctx, dev, model.Params(), obj, lat.Array, train.Config{
		Epochs: c.Int("epochs"), BatchSize: c.Int("batch_size"), LR: c.Float64("lr"), Seed: seed,
		SaveEvery: c.Int("save_every"), OutDir: outDir,
		Kind: kind, Config: cfg.Map(), Schedule: schedule, Args: flagArgs(c),
		Resume: c.String("resume"), Log: stdout, Bar: stderr,
	})
	if errors.Is(err, train.ErrInterrupted) {
		return ucli.Exit(fmt.Sprintf("interrupted; the state is saved in %s — continue with --resume %s", res.Last, outDir), 130)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "done: %d epochs, best loss %.6f; checkpoints in %s\n", res.Epochs, res.BestLoss, outDir)
	return nil
}

// flagArgs records every flag the user could set, as the seed stored vars(args).
func flagArgs(c *ucli.Context) map[string]any {
	args := map[string]any{}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		switch f.(type) {
		case *ucli.IntSliceFlag:
			args[name] = c.IntSlice(name)
		case *ucli.Float64SliceFlag:
			args[name] = c.Float64Slice(name)
		case *ucli.StringSliceFlag:
			args[name] = c.StringSlice(name)
		default:
			if v := c.Value(name); v != nil {
				args[name] = v
			}
		}
	}
	return args
}
