package cli

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/eval"
	"github.com/latentad/latentad/internal/progress"
	"github.com/latentad/latentad/internal/rng"
)

func init() { progress.Quiet = true }

// run calls Main and returns the exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	code := Main(append([]string{"latentad"}, args...))
	return code, o.String(), e.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := run(t, args...)
	if code != 0 {
		t.Fatalf("latentad %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// latentTask writes a small latent anomaly task: normal latents from a low-rank family
// (three smooth spatial patterns with random weights, plus a little noise) and anomalies
// that add a local lesion — a bright 2×2×2 patch at a random place — to a normal latent.
func latentTask(t *testing.T, dir string, nNormal, nAnomaly int, seed uint64) string {
	d, _ := latentTaskLesions(t, dir, nNormal, nAnomaly, seed)
	return d
}

// latentTaskLesions is latentTask that also returns each sample's lesion corner (d, h, w),
// {-1,-1,-1} for normals.
func latentTaskLesions(t *testing.T, dir string, nNormal, nAnomaly int, seed uint64) (string, [][3]int) {
	t.Helper()
	const C, D, H, W = 4, 4, 4, 4
	r := rng.New(seed)
	basis := rng.New(99) // the family is the same for every split
	pat := make([][]float32, 3)
	for k := range pat {
		pat[k] = make([]float32, C*D*H*W)
		fc, fd, fh, fw := basis.Float64()*3, basis.Float64()*2, basis.Float64()*2, basis.Float64()*2
		for i := range pat[k] {
			c, d, h, w := i/(D*H*W), i/(H*W)%D, i/W%H, i%W
			pat[k][i] = float32(math.Sin(fc*float64(c)+fd*float64(d)+1) * math.Cos(fh*float64(h)-fw*float64(w)))
		}
	}
	n := nNormal + nAnomaly
	l := &data.Latents{Array: compute.NewArray(n, C, D, H, W)}
	lesions := make([][3]int, n)
	per := C * D * H * W
	for s := 0; s < n; s++ {
		z := l.Array.Data[s*per : (s+1)*per]
		for k := range pat {
			a := float32(r.NormFloat64())
			for i := range z {
				z[i] += a * pat[k][i]
			}
		}
		for i := range z {
			z[i] += 0.05 * float32(r.NormFloat64())
		}
		label := 0
		lesions[s] = [3]int{-1, -1, -1}
		if s >= nNormal {
			label = 1
			d0, h0, w0 := r.IntN(D-1), r.IntN(H-1), r.IntN(W-1)
			lesions[s] = [3]int{d0, h0, w0}
			for c := 0; c < C; c++ {
				for d := d0; d < d0+2; d++ {
					for h := h0; h < h0+2; h++ {
						for w := w0; w < w0+2; w++ {
							z[((c*D+d)*H+h)*W+w] += 2
						}
					}
				}
			}
		}
		l.Index = append(l.Index, data.IndexRow{ID: "p" + strconv.Itoa(s), Label: label, Age: math.NaN()})
	}
	if err := data.WriteLatents(dir, l); err != nil {
		t.Fatal(err)
	}
	return dir, lesions
}

var tinyModel = []string{"--base_channels", "8", "--time_dim", "8", "--num_res_blocks", "1", "--device", "cpu"}

// TestTrainFMScoresAnomalies: flow matching trained through the CLI on normal latents of
// the task separates its anomalies with mse_multi_t at ROC-AUC ≥ 0.9 (issue 3).
func TestTrainFMScoresAnomalies(t *testing.T) {
	tmp := t.TempDir()
	trainDir := latentTask(t, filepath.Join(tmp, "train"), 64, 0, 1)
	testDir, lesions := latentTaskLesions(t, filepath.Join(tmp, "test"), 20, 20, 2)
	runDir := filepath.Join(tmp, "fm")
	mustRun(t, append([]string{"train-fm", "--latents", trainDir, "--out_dir", runDir, "--epochs", "100", "--batch_size", "8", "--lr", "2e-3"}, tinyModel...)...)
	for _, name := range []string{"model.safetensors", "best_model.safetensors", "checkpoint_epoch010.safetensors", "loss_history.csv"} {
		if _, err := os.Stat(filepath.Join(runDir, name)); err != nil {
			t.Errorf("train-fm wrote no %s", name)
		}
	}
	out := filepath.Join(tmp, "scores.csv")
	mustRun(t, "score", "--model", filepath.Join(runDir, "model.safetensors"), "--latents", testDir, "--method", "mse_multi_t", "--n_samples", "20", "--out", out, "--device", "cpu")
	s, err := eval.ReadScoresCSV(out)
	if err != nil {
		t.Fatal(err)
	}
	auc, err := eval.ROCAUC(s.Scores, s.Labels)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mse_multi_t ROC-AUC %.3f", auc)
	if auc < 0.9 {
		t.Errorf("ROC-AUC %.3f < 0.9", auc)
	}

	// Shards merged equal one run.
	var parts []string
	for i := 0; i < 3; i++ {
		p := filepath.Join(tmp, "part"+strconv.Itoa(i)+".csv")
		mustRun(t, "score", "--model", filepath.Join(runDir, "model.safetensors"), "--latents", testDir, "--n_samples", "20", "--out", p, "--shard", strconv.Itoa(i)+"/3", "--batch_size", "3", "--device", "cpu")
		parts = append(parts, p)
	}
	merged := filepath.Join(tmp, "merged.csv")
	mustRun(t, append(append([]string{"merge-scores"}, parts[2], parts[0], parts[1]), "--out", merged)...)
	m, err := eval.ReadScoresCSV(merged)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != s.Len() {
		t.Fatalf("merged %d rows, one run %d", m.Len(), s.Len())
	}
	for i := range s.Scores {
		if m.IDs[i] != s.IDs[i] || m.Labels[i] != s.Labels[i] || math.Abs(m.Scores[i]-s.Scores[i]) > 1e-6*s.Scores[i] {
			t.Errorf("row %d: merged %s,%d,%g; one run %s,%d,%g", i, m.IDs[i], m.Labels[i], m.Scores[i], s.IDs[i], s.Labels[i], s.Scores[i])
		}
	}

	// The other flow scores run and write every row; maps go where asked.
	for _, method := range []string{"velocity_inconsistency", "round_trip"} {
		p := filepath.Join(tmp, method+".csv")
		mustRun(t, "score", "--model", filepath.Join(runDir, "model.safetensors"), "--latents", testDir, "--method", method, "--n_steps", "5", "--out", p, "--maps", filepath.Join(tmp, "maps"), "--device", "cpu")
		if r, err := eval.ReadScoresCSV(p); err != nil || r.Len() != 40 {
			t.Errorf("%s: %v, %d rows", method, err, r.Len())
		}
	}
	if _, err := data.ReadNPY(filepath.Join(tmp, "maps", "p0_map.npy")); err != nil {
		t.Errorf("maps: %v", err)
	}

	// Issue 8: where is the anomaly? The mse_multi_t map's maximum falls inside the known
	// lesion for most anomalies. A 2×2×2 lesion covers 8 of 64 voxels, so chance is 12.5%.
	mapDir := filepath.Join(tmp, "mse_maps")
	mustRun(t, "score", "--model", filepath.Join(runDir, "model.safetensors"), "--latents", testDir, "--n_samples", "20", "--out", filepath.Join(tmp, "m.csv"), "--maps", mapDir, "--device", "cpu")
	hits, n := 0, 0
	for s, les := range lesions {
		if les[0] < 0 {
			continue
		}
		m, err := data.ReadNPY(filepath.Join(mapDir, "p"+strconv.Itoa(s)+"_map.npy"))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Shape) != 3 || m.Shape[0] != 4 || m.Shape[1] != 4 || m.Shape[2] != 4 {
			t.Fatalf("map shape %v, want the latent grid [4 4 4]", m.Shape)
		}
		best := 0
		for i, v := range m.Data {
			if v > m.Data[best] {
				best = i
			}
		}
		d, h, w := best/16, best/4%4, best%4
		n++
		if d >= les[0] && d < les[0]+2 && h >= les[1] && h < les[1]+2 && w >= les[2] && w < les[2]+2 {
			hits++
		}
	}
	t.Logf("map maximum inside the lesion for %d of %d anomalies", hits, n)
	if hits*10 < n*7 {
		t.Errorf("map maximum inside the lesion for only %d of %d anomalies, want ≥ 70%%", hits, n)
	}
}

// TestScoreBadInput: each mistake is a clear error naming the file or flag, not a panic.
func TestScoreBadInput(t *testing.T) {
	tmp := t.TempDir()
	lat := latentTask(t, filepath.Join(tmp, "lat"), 8, 0, 1)
	runDir := filepath.Join(tmp, "fm")
	mustRun(t, append([]string{"train-fm", "--latents", lat, "--out_dir", runDir, "--epochs", "1", "--batch_size", "4"}, tinyModel...)...)
	model := filepath.Join(runDir, "model.safetensors")
	ddpmRun := filepath.Join(tmp, "ddpm")
	mustRun(t, append([]string{"train-ddpm", "--latents", lat, "--out_dir", ddpmRun, "--epochs", "1", "--batch_size", "4", "--timesteps", "50"}, tinyModel...)...)

	other := filepath.Join(tmp, "other")
	l := &data.Latents{Array: compute.NewArray(2, 5, 2, 2, 2), Index: []data.IndexRow{{ID: "a", Age: math.NaN()}, {ID: "b", Age: math.NaN()}}}
	if err := data.WriteLatents(other, l); err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(tmp, "trunc.npy")
	raw, _ := os.ReadFile(filepath.Join(lat, "latents.npy"))
	os.WriteFile(trunc, raw[:len(raw)/2], 0o644)
	truncCk := filepath.Join(tmp, "trunc.safetensors")
	raw, _ = os.ReadFile(model)
	os.WriteFile(truncCk, raw[:len(raw)/3], 0o644)
	notDir := filepath.Join(tmp, "file")
	os.WriteFile(notDir, []byte("x"), 0o644)

	out := filepath.Join(tmp, "s.csv")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", model, "--latents", other}, "channels"},
		{[]string{"--model", model, "--latents", trunc}, "trunc.npy"},
		{[]string{"--model", filepath.Join(tmp, "missing.safetensors"), "--latents", lat}, "missing.safetensors"},
		{[]string{"--model", truncCk, "--latents", lat}, "trunc.safetensors"},
		{[]string{"--model", model, "--latents", lat, "--method", "magic"}, "magic"},
		{[]string{"--model", model, "--latents", lat, "--method", "ddpm"}, "flow-matching"},
		{[]string{"--model", filepath.Join(ddpmRun, "model.safetensors"), "--latents", lat, "--method", "round_trip"}, "DDPM"},
		{[]string{"--model", model, "--latents", lat, "--shard", "3/2"}, "--shard"},
		{[]string{"--model", model, "--latents", lat, "--maps", notDir}, "--maps"},
		{[]string{"--model", model, "--latents", lat, "--method", "velocity_inconsistency", "--n_samples", "1"}, "n_samples"},
	} {
		code, _, errs := run(t, append([]string{"score", "--out", out, "--device", "cpu"}, c.args...)...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("score %v: exit %d, stderr %q; want an error mentioning %q", c.args, code, errs, c.want)
		}
	}
	// ddpm scoring works on the DDPM checkpoint.
	mustRun(t, "score", "--model", filepath.Join(ddpmRun, "model.safetensors"), "--latents", lat, "--method", "ddpm_small_t", "--t_small", "10", "--out", out, "--device", "cpu")
}

// TestInterspersed: flags after positional arguments, and the seed's multi-value options.
func TestInterspersed(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"latentad merge-scores a.csv b.csv --out all.csv", "latentad merge-scores --out all.csv a.csv b.csv"},
		{"latentad extract --expected_shape 128 128 64 --root r", "latentad extract --expected_shape 128,128,64 --root r"},
		{"latentad extract --hu-window -1000 400 --out o", "latentad extract --hu-window -1000,400 --out o"},
		{"latentad inspect a.nii --json b.nii", "latentad inspect --json a.nii b.nii"},
		{"latentad merge-scores --out x -- --weird.csv", "latentad merge-scores --out x -- --weird.csv"},
	} {
		if got := strings.Join(interspersed(strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

// TestBenchJSON: bench prints one JSON line with the fields (kernels only here; the
// model figures cost seconds and are measured by hand, see the README).
func TestBenchJSON(t *testing.T) {
	out := mustRun(t, "bench", "--device", "cpu", "--repeat", "1", "--skip_model", "--ops", "--json")
	var got struct {
		Device  string             `json:"device"`
		Kernels map[string]float64 `json:"kernels"`
		Ops     []struct {
			Op    string  `json:"op"`
			Calls int     `json:"calls"`
			MS    float64 `json:"ms"`
		} `json:"train_step_ops"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("not one JSON line: %v\n%s", err, out)
	}
	for _, k := range []string{"conv3d_fwd_gflops", "conv3d_bwd_data_gflops", "conv3d_bwd_weight_gflops", "group_norm_fwd_gbs", "silu_fwd_gbs", "axpy_gbs"} {
		if v := got.Kernels[k]; !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v", k, v)
		}
	}
	// --ops: a training step of the default model has 10 forward convolutions of which 8
	// are the residual blocks' 64→64, and one Adam update.
	calls := map[string]int{}
	for _, o := range got.Ops {
		calls[o.Op] = o.Calls
		if !(o.MS >= 0) {
			t.Errorf("%s: %v ms", o.Op, o.MS)
		}
	}
	if calls["Conv3d 4x64x8x16x16 64x64x3x3x3"] != 8 || calls["Adam 1378752"] != 1 {
		t.Errorf("train_step_ops: %v", calls)
	}
}
