package cli

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/data/nifti"
	"github.com/latentad/latentad/data/synth"
	"github.com/latentad/latentad/eval"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/nn"
)

// TestVolumeMapsOverlay: scoring volumes with --maps writes, per patient, a NIfTI overlay
// with the source's shape and affine and a PNG (issue 8); untrained models suffice here.
func TestVolumeMapsOverlay(t *testing.T) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "cohort")
	subjects, err := synth.Generate(synth.Config{Root: root, Shape: [3]int{16, 16, 8}, NNormal: 3, NAnomaly: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	dev := fallback.New()
	ae, err := nn.NewTiny3DAE(dev, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	aePath := filepath.Join(tmp, "ae.safetensors")
	if err := checkpoint.Save(aePath, &checkpoint.Checkpoint{Kind: "ae", Config: map[string]int{"base": 2}, Model: ae.Params().StateDict()}); err != nil {
		t.Fatal(err)
	}
	fm, err := nn.NewVelocity(dev, nn.VelocityConfig{InChannels: 16, BaseChannels: 8, TimeDim: 8, NumResBlocks: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	fmPath := filepath.Join(tmp, "fm.safetensors")
	if err := checkpoint.Save(fmPath, &checkpoint.Checkpoint{Kind: "fm", Config: fm.Config().Map(), Model: fm.Params().StateDict()}); err != nil {
		t.Fatal(err)
	}
	// The seed's spelling of list options: --expected_shape X Y Z, --hu_window LO HI.
	shape := []string{"--expected_shape", "16", "16", "8", "--hu_window", "-1000", "400", "--device", "cpu", "--metadata_csv", filepath.Join(root, "Combined_Labels.csv")}
	for _, method := range []string{"mse_multi_t", "ae_recon"} {
		maps := filepath.Join(tmp, method)
		args := []string{"score", "--model", fmPath, "--ae_model_path", aePath, "--root", root, "--method", method,
			"--n_samples", "2", "--out", filepath.Join(tmp, method+".csv"), "--maps", maps}
		if method == "ae_recon" {
			args[2] = aePath
		}
		mustRun(t, append(args, shape...)...)
		scores, err := eval.ReadScoresCSV(filepath.Join(tmp, method+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range subjects {
			src, err := nifti.ReadFile(s.ROIPath)
			if err != nil {
				t.Fatal(err)
			}
			im, err := nifti.ReadFile(filepath.Join(maps, s.ID+"_anomaly.nii.gz"))
			if err != nil {
				t.Fatalf("%s: %v", method, err)
			}
			if got := im.Shape(); len(got) != 3 || got[0] != 16 || got[1] != 16 || got[2] != 8 {
				t.Errorf("%s %s: overlay shape %v, want the source's [16 16 8]", method, s.ID, got)
			}
			for i := 0; i < 4; i++ {
				for j := 0; j < 4; j++ {
					if math.Abs(im.Affine[i][j]-src.Affine[i][j]) > 1e-5 {
						t.Fatalf("%s %s: affine %v, source %v", method, s.ID, im.Affine, src.Affine)
					}
				}
			}
			if method == "ae_recon" {
				// At the volume's own resolution the map's mean is the score (issue 8).
				var mean float64
				for _, v := range im.Data {
					mean += v / float64(len(im.Data))
				}
				if sc := scores.Scores[i]; scores.IDs[i] != s.ID || math.Abs(mean-sc) > 1e-6*sc {
					t.Errorf("ae_recon %s: map mean %.9g, score %.9g (%s)", s.ID, mean, sc, scores.IDs[i])
				}
			}
			if fi, err := os.Stat(filepath.Join(maps, s.ID+"_anomaly.png")); err != nil || fi.Size() == 0 {
				t.Errorf("%s %s: no PNG: %v", method, s.ID, err)
			}
		}
	}
}

// TestResample checks the trilinear upsampling against hand values and keeps constants.
func TestResample(t *testing.T) {
	// 1×1×2 → 1×1×4 with align_corners=False: sources at x = -0.25, 0.25, 0.75, 1.25.
	got := Resample([]float32{0, 1}, 1, 1, 2, 1, 1, 4)
	want := []float32{0, 0.25, 0.75, 1}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("Resample = %v, want %v", got, want)
		}
	}
	c := Resample([]float32{3, 3, 3, 3, 3, 3, 3, 3}, 2, 2, 2, 5, 3, 7)
	for _, v := range c {
		if v != 3 {
			t.Fatalf("a constant map resampled to %v", v)
		}
	}
}

// TestTrainFromVolumesCachesLatents: train-fm encodes --normal_root with --ae_model_path on
// the fly and keeps the latents in out_dir, so the next run does not encode again (issue 4).
func TestTrainFromVolumesCachesLatents(t *testing.T) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "cohort")
	if _, err := synth.Generate(synth.Config{Root: root, Shape: [3]int{16, 16, 8}, NNormal: 6, NAnomaly: 2, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	ae, err := nn.NewTiny3DAE(fallback.New(), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	aePath := filepath.Join(tmp, "ae.safetensors")
	if err := checkpoint.Save(aePath, &checkpoint.Checkpoint{Kind: "ae", Config: map[string]int{"base": 2}, Model: ae.Params().StateDict()}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "fm")
	args := append([]string{"train-fm", "--normal_root", root, "--ae_model_path", aePath, "--train_csv", filepath.Join(root, "train.csv"),
		"--metadata_csv", filepath.Join(root, "Combined_Labels.csv"), "--expected_shape", "16", "--expected_shape", "16", "--expected_shape", "8",
		"--out_dir", out, "--epochs", "1", "--batch_size", "2"}, tinyModel...)
	for i := 0; i < 2; i++ {
		code, stdoutText, errs := run(t, args...)
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s%s", i, code, stdoutText, errs)
		}
		cached := strings.Contains(errs, "using cached latents")
		if cached != (i == 1) {
			t.Errorf("run %d: cached = %v, want %v\n%s", i, cached, i == 1, errs)
		}
	}
	ck, err := checkpoint.Load(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Config["in_channels"] != 16 {
		t.Errorf("model trained on %d latent channels, want the AE's 16", ck.Config["in_channels"])
	}
}
