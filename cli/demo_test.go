package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoRunsEndToEnd runs the demo at a toy size: every step works and every promised
// file appears. (The demo's real size and its ROC-AUC are checked by running it; see the
// README.)
func TestDemoRunsEndToEnd(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo")
	stdoutText := mustRun(t, "demo", "--out_dir", out, "--n_normal", "14", "--n_anomaly", "6", "--ae_epochs", "1", "--epochs", "1", "--base_channels", "8", "--device", "cpu")
	for _, want := range []string{"ROC-AUC", "Flow matching", "DDPM", "AE reconstruction"} {
		if !strings.Contains(stdoutText, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	for _, f := range []string{"eval/roc_test.png", "eval/comparison.md", "eval/comparison.json", "eval/tuning_flow_matching.csv",
		"eval/scores_flow_matching.csv", "eval/scores_ddpm.csv", "eval/scores_ae_recon.csv", "maps_anomaly_vs_normal.png",
		"ae/recon_preview.png", "latents/train/latents.npy", "latents/train/index.csv", "maps/scores.csv"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("demo did not write %s: %v", f, err)
		}
	}
}
