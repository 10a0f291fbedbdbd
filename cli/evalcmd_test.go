package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/ddpm"
	"github.com/latentad/latentad/eval"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/flow"
	"github.com/latentad/latentad/internal/progress"
	"github.com/latentad/latentad/nn"
	"github.com/latentad/latentad/train"
)

// evalRun runs `latentad args…` with captured output.
func evalRun(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	progress.Quiet = true
	var o, e bytes.Buffer
	oldOut, oldErr := stdout, stderr
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = oldOut, oldErr }()
	code = Main(append([]string{"latentad"}, args...))
	return code, o.String(), e.String()
}

// evalLatents writes a latents folder of nNormal normals and nAnomaly anomalies, (C, 2, 4, 4)
// each: normals are a fixed smooth pattern plus N(0, 0.3²) noise; anomalies add 1.5 to
// one half of the volume, a shift a model of the normals should notice.
func evalLatents(t *testing.T, dir string, C, nNormal, nAnomaly int, seed uint64) string {
	t.Helper()
	const D, H, W = 2, 4, 4
	r := rand.New(rand.NewPCG(seed, 7))
	n := nNormal + nAnomaly
	per := C * D * H * W
	l := &data.Latents{Array: compute.NewArray(n, C, D, H, W)}
	for s := 0; s < n; s++ {
		z := l.Array.Data[s*per : (s+1)*per]
		for i := range z {
			z[i] = float32(0.5*math.Sin(0.7*float64(i)) + 0.3*r.NormFloat64())
			if s >= nNormal && i%(D*H*W) < D*H*W/2 {
				z[i] += 1.5
			}
		}
		label := 0
		if s >= nNormal {
			label = 1
		}
		l.Index = append(l.Index, data.IndexRow{ID: "s" + strconv.FormatUint(seed, 10) + "_" + strconv.Itoa(s), Label: label, Age: math.NaN()})
	}
	if err := data.WriteLatents(dir, l); err != nil {
		t.Fatal(err)
	}
	return dir
}

// evalFixture holds tiny flow-matching and DDPM checkpoints trained on 16 normal latents,
// and 12 val and 12 test latents (6 normal + 6 anomalous each).
type evalFixture struct {
	dir, fm, ddpm, val, test string
}

func newEvalFixture(t *testing.T, epochs int) evalFixture {
	t.Helper()
	dir := t.TempDir()
	f := evalFixture{dir: dir,
		val:  evalLatents(t, filepath.Join(dir, "val"), 4, 6, 6, 2),
		test: evalLatents(t, filepath.Join(dir, "test"), 4, 6, 6, 3),
	}
	train := evalLatents(t, filepath.Join(dir, "train"), 4, 16, 0, 1)
	f.fm = evalTrain(t, train, filepath.Join(dir, "fm"), "fm", epochs)
	f.ddpm = evalTrain(t, train, filepath.Join(dir, "ddpm"), "ddpm", epochs)
	return f
}

// evalTrain trains a tiny velocity network (base 8, time_dim 8, one block) with the trainers
// train-fm and train-ddpm run, and returns its final checkpoint.
func evalTrain(t *testing.T, latents, outDir, kind string, epochs int) string {
	t.Helper()
	l, err := data.ReadLatents(latents)
	if err != nil {
		t.Fatal(err)
	}
	dev := fallback.New()
	cfg := nn.VelocityConfig{InChannels: l.Array.Shape[1], BaseChannels: 8, TimeDim: 8, NumResBlocks: 1}
	model, err := nn.NewVelocity(dev, cfg, 42)
	if err != nil {
		t.Fatal(err)
	}
	defer model.Release()
	var obj train.Objective
	var sched *checkpoint.Schedule
	if kind == "fm" {
		tr := flow.NewTrainer(dev, model)
		defer tr.Release()
		obj = tr
	} else {
		s, err := ddpm.NewSchedule("cosine", 100)
		if err != nil {
			t.Fatal(err)
		}
		tr := ddpm.NewTrainer(dev, model, s)
		defer tr.Release()
		obj, sched = tr, &checkpoint.Schedule{Timesteps: s.Timesteps, Type: s.Type}
	}
	if _, err := train.Run(context.Background(), dev, model.Params(), obj, l.Array, train.Config{
		Epochs: epochs, BatchSize: 4, LR: 3e-3, Seed: 42, OutDir: outDir,
		Kind: kind, Config: velocityConfigMap(cfg), Schedule: sched,
	}); err != nil {
		t.Fatalf("training %s: %v", kind, err)
	}
	return filepath.Join(outDir, train.FinalName)
}

func TestEvalLatentsEndToEnd(t *testing.T) {
	// 80 epochs (320 steps, ~1 s per model): enough for the DDPM to rank the test anomalies
	// above the normals (ROC-AUC 0.86–1.0 over four training seeds); flow matching needs less.
	f := newEvalFixture(t, 80)
	out := filepath.Join(f.dir, "eval")
	code, stdo, stde := evalRun(t, "eval", "--fm_model", f.fm, "--ddpm_model", f.ddpm,
		"--val_latents", f.val, "--test_latents", f.test, "--out_dir", out, "--device", "cpu",
		"--k_values", "2,3", "--ddpm_t_small", "5,50", "--ddpm_full_range", "--fm_t_ranges", "full,small,0.1:0.6",
		"--fm_methods", "mse_multi_t,velocity_inconsistency", "--bootstrap", "50", "--batch_size", "5")
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s%s", code, stdo, stde)
	}
	for _, w := range []string{"| DDPM |", "| Flow matching |", "Test ROC-AUC"} {
		if !strings.Contains(stdo, w) {
			t.Errorf("printed table lacks %q:\n%s", w, stdo)
		}
	}

	// The grids the flags ask for, in the order the tuning files list them.
	grids := map[string][]string{}
	for _, ts := range []string{"t_small=5", "t_small=50", "t=full"} {
		for _, k := range []string{"2", "3"} {
			s := "ddpm_small_t " + ts + " K=" + k
			if ts == "t=full" {
				s = "ddpm t=full K=" + k
			}
			grids[evalDDPM] = append(grids[evalDDPM], s)
		}
	}
	for _, m := range []string{"mse_multi_t", "velocity_inconsistency"} {
		for _, k := range []string{"2", "3"} {
			for _, r := range []string{"full [0,1]", "small [0,0.3]", "[0.1,0.6]"} {
				grids[evalFM] = append(grids[evalFM], m+" K="+k+" t_range="+r)
			}
		}
	}

	var rows []eval.Row
	evalReadJSON(t, filepath.Join(out, "comparison.json"), &rows)
	if len(rows) != 2 || rows[0].Method != "DDPM" || rows[1].Method != "Flow matching" {
		t.Fatalf("comparison.json rows %+v; want DDPM then Flow matching", rows)
	}
	testIDs, testLabels := evalIndex(t, f.test)
	for i, key := range []string{evalDDPM, evalFM} {
		row := rows[i]
		// The tuning file holds every grid point once, exactly one chosen, and the choice is
		// what eval.Select makes of the val metrics written there.
		tun := evalReadCSV(t, filepath.Join(out, "tuning_"+key+".csv"))
		col := func(name string) int {
			j := slices.Index(tun[0], name)
			if j < 0 {
				t.Fatalf("tuning_%s.csv has no column %q: %v", key, name, tun[0])
			}
			return j
		}
		var params []string
		var cands []eval.Candidate
		chosen := -1
		for j, rec := range tun[1:] {
			params = append(params, rec[col("params")])
			var v eval.Summary
			v.ROCAUC = evalParseF(t, rec[col("roc_auc")])
			v.AnomalyMean = evalParseF(t, rec[col("anomaly_mean")])
			v.NormalMean = evalParseF(t, rec[col("normal_mean")])
			cands = append(cands, eval.Candidate{Params: rec[col("params")], Val: v})
			evalCheckUnit(t, key+" val "+rec[col("params")], v.ROCAUC, evalParseF(t, rec[col("pr_auc")]))
			if rec[col("n_anomaly")] != "6" || rec[col("n_normal")] != "6" {
				t.Errorf("tuning_%s.csv %s: n_anomaly %s, n_normal %s; want 6 and 6", key, rec[col("params")], rec[col("n_anomaly")], rec[col("n_normal")])
			}
			if rec[col("chosen")] == "true" {
				if chosen >= 0 {
					t.Errorf("tuning_%s.csv marks more than one setting chosen", key)
				}
				chosen = j
			}
		}
		if !slices.Equal(params, grids[key]) {
			t.Errorf("tuning_%s.csv settings\n%q\nwant\n%q", key, params, grids[key])
		}
		if want := eval.Select(cands); chosen != want || row.Params != params[want] {
			t.Errorf("%s: chosen row %d, table params %q; eval.Select on the val metrics picks %d (%q)", key, chosen, row.Params, want, params[want])
		}
		if row.Val == nil || row.Val.ROCAUC != cands[chosen].Val.ROCAUC {
			t.Errorf("%s: table val metrics %+v differ from the chosen tuning row %+v", key, row.Val, cands[chosen].Val)
		}

		// Test metrics: in range, with bootstrap CIs, and recomputable from scores_<key>.csv.
		tm := row.Test
		evalCheckUnit(t, key+" test", tm.ROCAUC, tm.PRAUC, tm.ROCAUCCI[0], tm.ROCAUCCI[1], tm.PRAUCCI[0], tm.PRAUCCI[1], tm.MWPValue, tm.Sensitivity, tm.Specificity)
		if tm.NAnomaly != 6 || tm.NNormal != 6 || tm.ROCAUCCI[0] > tm.ROCAUCCI[1] || tm.PRAUCCI[0] > tm.PRAUCCI[1] || tm.BootstrapUsed < 40 || tm.BootstrapUsed > 50 {
			t.Errorf("%s test summary %+v: want 6+6 samples, ordered CIs, ≤ 50 bootstrap resamples", key, tm)
		}
		set, err := eval.ReadScoresCSV(filepath.Join(out, "scores_"+key+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(set.IDs, testIDs) || !slices.Equal(set.Labels, testLabels) {
			t.Errorf("scores_%s.csv ids/labels %v %v; want the test index %v %v", key, set.IDs, set.Labels, testIDs, testLabels)
		}
		if auc, err := eval.ROCAUC(set.Scores, set.Labels); err != nil || math.Abs(auc-tm.ROCAUC) > 1e-12 {
			t.Errorf("scores_%s.csv gives ROC-AUC %v (%v); the table says %v", key, auc, err, tm.ROCAUC)
		}
		t.Logf("%s %s test AUC %.3f val AUC %.3f", key, row.Params, tm.ROCAUC, row.Val.ROCAUC)
		// The shifted half is far from every normal latent: a model of the normals, even a
		// barely trained one, must rank most anomalies above the normals on test.
		if tm.ROCAUC < 0.75 || tm.AnomalyMean <= tm.NormalMean {
			t.Errorf("%s: test ROC-AUC %.3f, means %.4g (anomaly) vs %.4g (normal); the shift should be found", key, tm.ROCAUC, tm.AnomalyMean, tm.NormalMean)
		}

		// The test scores are those `latentad score` gives with the chosen setting.
		again := filepath.Join(f.dir, "rescore_"+key+".csv")
		args := append([]string{"score", "--latents", f.test, "--out", again, "--device", "cpu", "--batch_size", "3"}, evalScoreArgs(t, key, row.Params, f)...)
		if code, o, e := evalRun(t, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, o, e)
		}
		ref, err := eval.ReadScoresCSV(again)
		if err != nil {
			t.Fatal(err)
		}
		// Same model, draws and inputs; only the batching differs, which must not change a
		// sample's score beyond float32 round-off in the reductions.
		for j := range ref.Scores {
			if d := math.Abs(ref.Scores[j] - set.Scores[j]); d > 1e-5*math.Abs(ref.Scores[j]) {
				t.Errorf("%s sample %s: eval scored %v, `latentad score %s` %v", key, ref.IDs[j], set.Scores[j], row.Params, ref.Scores[j])
				break
			}
		}
	}

	tab := evalReadCSV(t, filepath.Join(out, "comparison.csv"))
	if len(tab) != 3 || tab[1][0] != "DDPM" || tab[2][0] != "Flow matching" || tab[1][1] != rows[0].Params {
		t.Errorf("comparison.csv %q: want a header, DDPM and Flow matching with their params", tab)
	}
	md, err := os.ReadFile(filepath.Join(out, "comparison.md"))
	if err != nil || !strings.Contains(string(md), "| Flow matching | "+rows[1].Params+" |") {
		t.Errorf("comparison.md (%v):\n%s", err, md)
	}
	for _, p := range []string{"roc_test.png", "hist_ddpm.png", "hist_flow_matching.png"} {
		evalCheckPNG(t, filepath.Join(out, p))
	}
	if _, err := os.Stat(filepath.Join(out, "scores_ae_recon.csv")); err == nil {
		t.Errorf("scores_ae_recon.csv written without volumes")
	}
}

// evalScoreArgs turns a grid point's params string into `latentad score` flags.
func evalScoreArgs(t *testing.T, key, params string, f evalFixture) []string {
	t.Helper()
	fs := strings.Fields(params)
	args := []string{"--method", fs[0]}
	if key == evalDDPM {
		args = append(args, "--model", f.ddpm)
	} else {
		args = append(args, "--model", f.fm)
	}
	for _, kv := range fs[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "K":
			args = append(args, "--n_samples", v)
		case "t_small":
			args = append(args, "--t_small", v)
		case "t_range":
			var lo, hi string
			switch v {
			case "full":
				lo, hi = "0", "1"
			case "small":
				lo, hi = "0", "0.3"
			default: // [lo,hi]
				lo, hi, _ = strings.Cut(strings.Trim(v, "[]"), ",")
			}
			args = append(args, "--t_min", lo, "--t_max", hi)
		}
	}
	return args
}

func TestEvalBadInput(t *testing.T) {
	f := newEvalFixture(t, 1) // the checkpoints only need to load
	dir := f.dir
	oneClass := evalLatents(t, filepath.Join(dir, "oneclass"), 4, 5, 0, 4)
	threeCh := evalLatents(t, filepath.Join(dir, "threech"), 3, 3, 3, 5)
	bare := filepath.Join(dir, "bare.npy")
	if err := data.WriteNPY(bare, compute.NewArray(4, 4, 2, 4, 4)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	lat := []string{"--val_latents", f.val, "--test_latents", f.test}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"no model", append([]string{"--out_dir", out}, lat...), []string{"at least one model"}},
		{"no out_dir", append([]string{"--fm_model", f.fm}, lat...), []string{"--out_dir"}},
		{"no data", []string{"--fm_model", f.fm, "--out_dir", out}, []string{"no data"}},
		{"val only", []string{"--fm_model", f.fm, "--out_dir", out, "--val_latents", f.val}, []string{"--test_latents"}},
		{"both inputs", append([]string{"--fm_model", f.fm, "--out_dir", out, "--normal_root", dir}, lat...), []string{"not both"}},
		{"AE only on latents", append([]string{"--ae_model_path", f.fm, "--out_dir", out}, lat...), []string{"AE baseline", "volumes"}},
		{"volumes without splits", []string{"--ae_model_path", f.fm, "--out_dir", out, "--normal_root", dir}, []string{"--val_csv"}},
		{"one class", []string{"--fm_model", f.fm, "--out_dir", out, "--val_latents", oneClass, "--test_latents", f.test},
			[]string{"val split", oneClass, "5 normal and 0 anomalous", "ROC-AUC needs both classes"}},
		{"one class test", []string{"--fm_model", f.fm, "--out_dir", out, "--val_latents", f.val, "--test_latents", oneClass},
			[]string{"test split", "ROC-AUC needs both classes"}},
		{"unlabelled", []string{"--fm_model", f.fm, "--out_dir", out, "--val_latents", bare, "--test_latents", f.test},
			[]string{"val split", "4 more have no label"}},
		{"channels", []string{"--ddpm_model", f.ddpm, "--out_dir", out, "--val_latents", threeCh, "--test_latents", f.test},
			[]string{"val split", "3 channels", "--ddpm_model", "expects 4"}},
		{"wrong kind", append([]string{"--ddpm_model", f.fm, "--out_dir", out}, lat...), []string{"--ddpm_model", "flow-matching checkpoint"}},
		{"missing model", append([]string{"--fm_model", filepath.Join(dir, "nope.safetensors"), "--out_dir", out}, lat...), []string{"--fm_model", "nope.safetensors"}},
		{"bad K", append([]string{"--fm_model", f.fm, "--out_dir", out, "--k_values", "5,x"}, lat...), []string{"--k_values", `"x"`}},
		{"zero K", append([]string{"--fm_model", f.fm, "--out_dir", out, "--k_values", "0"}, lat...), []string{"--k_values"}},
		{"empty t_small", append([]string{"--ddpm_model", f.ddpm, "--out_dir", out, "--ddpm_t_small", " , "}, lat...), []string{"--ddpm_t_small", "empty"}},
		{"bad t range", append([]string{"--fm_model", f.fm, "--out_dir", out, "--fm_t_ranges", "0.5:0.2"}, lat...), []string{"--fm_t_ranges", "0.5:0.2"}},
		{"bad fm method", append([]string{"--fm_model", f.fm, "--out_dir", out, "--fm_methods", "round_trip"}, lat...), []string{"--fm_methods", "round_trip"}},
		{"variance K=1", append([]string{"--fm_model", f.fm, "--out_dir", out, "--fm_methods", "velocity_inconsistency", "--k_values", "1,5"}, lat...), []string{"at least 2"}},
		{"batch", append([]string{"--fm_model", f.fm, "--out_dir", out, "--batch_size", "0"}, lat...), []string{"--batch_size"}},
		{"bootstrap", append([]string{"--fm_model", f.fm, "--out_dir", out, "--bootstrap", "-1"}, lat...), []string{"--bootstrap"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := evalRun(t, append([]string{"eval", "--device", "cpu"}, c.args...)...)
			if code == 0 {
				t.Fatalf("exit 0; want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q does not mention %q", errs, w)
				}
			}
			if strings.Contains(errs, "panic") || strings.Contains(errs, "goroutine") {
				t.Errorf("stderr shows a panic: %s", errs)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, "comparison.json")); err == nil {
		t.Errorf("a failed run left comparison.json")
	}
}

func evalReadJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
}

func evalReadCSV(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("%s: %v (%d records)\n%s", path, err, len(recs), b)
	}
	return recs
}

func evalParseF(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return v
}

// evalCheckUnit fails unless every value is a number in [0, 1].
func evalCheckUnit(t *testing.T, what string, vs ...float64) {
	t.Helper()
	for i, v := range vs {
		if !(v >= 0 && v <= 1) {
			t.Errorf("%s: value %d is %v, want it in [0, 1]", what, i, v)
		}
	}
}

func evalIndex(t *testing.T, dir string) ([]string, []int) {
	t.Helper()
	l, err := data.ReadLatents(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var labels []int
	for _, r := range l.Index {
		ids = append(ids, r.ID)
		labels = append(labels, r.Label)
	}
	return ids, labels
}

func evalCheckPNG(t *testing.T, path string) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Errorf("%s is only %v", path, b)
	}
}
