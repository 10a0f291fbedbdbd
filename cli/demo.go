package cli

import (
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/latentad/latentad/internal/atomicfile"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/data/synth"
	"github.com/latentad/latentad/eval"
	"github.com/latentad/latentad/viz"
)

func init() {
	register(&ucli.Command{
		Name:      "demo",
		Usage:     "generate a synthetic cardiac cohort and run the whole pipeline on it",
		UsageText: "latentad demo [--out_dir demo_out] [--device auto]",
		Description: "No data needed. Writes a cohort of small CT-like volumes (normal left ventricles, and\n" +
			"Takotsubo-like apical ballooning as anomalies) with metadata and split CSVs, then runs\n" +
			"train-ae → extract → train-fm and train-ddpm → score (flow matching, DDPM, and the\n" +
			"autoencoder baseline) → metrics, prints the ROC-AUCs and writes plots and anomaly maps.\n" +
			"Sized to finish in minutes on a 2-core laptop; every step is a latentad command you can\n" +
			"rerun by hand on your own data.",
		Flags: []ucli.Flag{
			stringFlag("out_dir", "demo_out", "where everything goes"),
			intFlag("n_normal", 48, "normal patients"),
			intFlag("n_anomaly", 24, "patients with apical ballooning"),
			intFlag("ae_epochs", 15, "autoencoder epochs"),
			intFlag("epochs", 40, "flow-matching and DDPM epochs"),
			intFlag("base_channels", 32, "velocity model width (the seed's 64 is slower)"),
			intFlag("seed", 42, "random seed of the cohort and the training"),
			boolFlag("skip_ddpm", "train and score flow matching only"),
			deviceFlag(),
		},
		Action: runDemo,
	})
}

// step runs one latentad command as the demo's user would, echoing it.
func step(args ...string) error {
	fmt.Fprintf(stdout, "\n$ latentad %s\n", quoteArgs(args))
	t0 := time.Now()
	if code := Main(append([]string{"latentad"}, args...)); code != 0 {
		return ucli.Exit(fmt.Sprintf("demo: `latentad %s` failed (exit %d)", args[0], code), code)
	}
	fmt.Fprintf(stdout, "  (%s: %.1fs)\n", args[0], time.Since(t0).Seconds())
	return nil
}

func quoteArgs(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

func runDemo(c *ucli.Context) error {
	out := c.String("out_dir")
	dev := c.String("device")
	seed := strconv.Itoa(c.Int("seed"))
	cohort := filepath.Join(out, "cohort")
	start := time.Now()
	fmt.Fprintf(stdout, "latentad demo → %s\n\nGenerating a synthetic cohort: %d normal hearts, %d with apical ballooning (32×32×16 voxels)…\n",
		out, c.Int("n_normal"), c.Int("n_anomaly"))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	subjects, err := synth.Generate(synth.Config{Root: cohort, Shape: [3]int{32, 32, 16}, NNormal: c.Int("n_normal"), NAnomaly: c.Int("n_anomaly"), Seed: uint64(c.Int("seed"))})
	if err != nil {
		return err
	}
	split := map[string][2]int{}
	for _, s := range subjects {
		n := split[s.Split]
		n[s.Case]++
		split[s.Split] = n
	}
	for _, k := range []string{"train", "val", "test"} {
		fmt.Fprintf(stdout, "  %-5s %3d normal, %3d anomalous\n", k, split[k][0], split[k][1])
	}
	meta := filepath.Join(cohort, "Combined_Labels.csv")
	vol := []string{"--metadata_csv", meta, "--expected_shape", "32", "--expected_shape", "32", "--expected_shape", "16", "--device", dev}
	ae := filepath.Join(out, "ae")
	if err := step(append([]string{"train-ae", "--normal_root", cohort, "--train_csv", filepath.Join(cohort, "train.csv"),
		"--out_dir", ae, "--epochs", strconv.Itoa(c.Int("ae_epochs")), "--batch_size", "4", "--save_every", "0", "--seed", seed}, vol...)...); err != nil {
		return err
	}
	aeModel := filepath.Join(ae, "model.safetensors")
	for _, sp := range []string{"train", "test"} {
		if err := step(append([]string{"extract", "--ae_model_path", aeModel, "--root", cohort,
			"--include_csv", filepath.Join(cohort, sp+".csv"), "--out", filepath.Join(out, "latents", sp)}, vol...)...); err != nil {
			return err
		}
	}
	model := []string{"--base_channels", strconv.Itoa(c.Int("base_channels")), "--epochs", strconv.Itoa(c.Int("epochs")),
		"--batch_size", "4", "--lr", "1e-3", "--save_every", "0", "--seed", seed, "--device", dev}
	trainLat, testLat := filepath.Join(out, "latents", "train"), filepath.Join(out, "latents", "test")
	if err := step(append([]string{"train-fm", "--latents", trainLat, "--out_dir", filepath.Join(out, "fm")}, model...)...); err != nil {
		return err
	}
	type scored struct{ name, csv string }
	var runs []scored
	sc := func(name, modelPath string, extra ...string) error {
		p := filepath.Join(out, "scores_"+name+".csv")
		if err := step(append([]string{"score", "--model", modelPath, "--out", p, "--seed", seed, "--device", dev}, extra...)...); err != nil {
			return err
		}
		runs = append(runs, scored{name, p})
		return nil
	}
	if err := sc("flow_matching", filepath.Join(out, "fm", "best_model.safetensors"), "--latents", testLat, "--method", "mse_multi_t", "--maps", filepath.Join(out, "maps")); err != nil {
		return err
	}
	// Maps at the volumes' resolution, over the CT, for the test split.
	if err := step(append([]string{"score", "--model", filepath.Join(out, "fm", "best_model.safetensors"), "--ae_model_path", aeModel, "--root", cohort,
		"--include_csv", filepath.Join(cohort, "test.csv"), "--method", "mse_multi_t", "--seed", seed,
		"--out", filepath.Join(out, "maps", "scores.csv"), "--maps", filepath.Join(out, "maps")}, vol...)...); err != nil {
		return err
	}
	if !c.Bool("skip_ddpm") {
		if err := step(append([]string{"train-ddpm", "--latents", trainLat, "--out_dir", filepath.Join(out, "ddpm")}, model...)...); err != nil {
			return err
		}
		if err := sc("ddpm", filepath.Join(out, "ddpm", "best_model.safetensors"), "--latents", testLat, "--method", "ddpm"); err != nil {
			return err
		}
	}
	if err := sc("ae_recon", aeModel, append([]string{"--root", cohort, "--include_csv", filepath.Join(cohort, "test.csv"), "--method", "ae_recon"}, vol[:len(vol)-2]...)...); err != nil {
		return err
	}

	// The comparison: metrics of each method on the test split, and the ROC curves in one plot.
	fmt.Fprintf(stdout, "\nTest split: %d normal, %d anomalous\n\n%-14s %8s %8s %10s\n", split["test"][0], split["test"][1], "method", "ROC-AUC", "PR-AUC", "MW p")
	var curves []eval.NamedROC
	summary := map[string]eval.Summary{}
	for _, r := range runs {
		s, err := eval.ReadScoresCSV(r.csv)
		if err != nil {
			return err
		}
		sum, err := eval.Evaluate(s.Scores, s.Labels, eval.Options{Bootstrap: 200, Seed: 42})
		if err != nil {
			return fmt.Errorf("%s: %w", r.csv, err)
		}
		summary[r.name] = sum
		fmt.Fprintf(stdout, "%-14s %8.3f %8.3f %10.2g\n", r.name, sum.ROCAUC, sum.PRAUC, sum.MWPValue)
		roc, err := eval.ROCCurve(s.Scores, s.Labels, false)
		if err != nil {
			return err
		}
		curves = append(curves, eval.NamedROC{Name: r.name, Curve: roc})
	}
	if err := eval.SaveROCsPNG(filepath.Join(out, "roc_test.png"), "Test split", curves); err != nil {
		return err
	}
	compare, err := mapsCompare(out, subjects)
	if err != nil {
		return err
	}
	js, _ := json.MarshalIndent(summary, "", "  ")
	if err := atomicfile.WriteBytes(filepath.Join(out, "summary.json"), js); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nFlow matching (mse_multi_t) ROC-AUC on the test split: %.3f\n", summary["flow_matching"].ROCAUC)
	fmt.Fprintf(stdout, "Plots: %s, %s, %s (an anomalous heart's map above a normal one's);\nanomaly maps of every test patient (NIfTI overlays for 3D Slicer or ITK-SNAP, and PNGs): %s\nDone in %s.\n",
		filepath.Join(out, "roc_test.png"), filepath.Join(out, "ae", "recon_preview.png"), compare, filepath.Join(out, "maps"), time.Since(start).Round(time.Second))
	return nil
}

// mapsCompare stacks the map picture of the first anomalous test patient above that of the
// first normal one, so the demo shows where the model sees the anomaly.
func mapsCompare(out string, subjects []synth.Subject) (string, error) {
	var pick [2]string // normal, anomaly
	for _, s := range subjects {
		if s.Split == "test" && pick[s.Case] == "" {
			pick[s.Case] = s.ID
		}
	}
	var imgs []*image.RGBA
	for _, id := range []string{pick[1], pick[0]} {
		if id == "" {
			return "", fmt.Errorf("demo: the test split lacks a normal or an anomalous patient")
		}
		m, err := viz.LoadPNG(filepath.Join(out, "maps", id+"_anomaly.png"))
		if err != nil {
			return "", err
		}
		imgs = append(imgs, m)
	}
	p := filepath.Join(out, "maps_anomaly_vs_normal.png")
	return p, viz.SavePNG(p, viz.Stack(imgs...))
}
