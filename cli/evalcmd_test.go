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
	"github.com/latentad/latentad/data/nifti"
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
// each: normals are a fixed smooth pattern plus N(0, 0.3²) noise; anomalies add 1.5 to the
// first depth slice of every channel, a shift a model of the normals should notice.
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
		Kind: kind, Config: cfg.Map(), Schedule: sched,
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
	ae, err := nn.NewTiny3DAE(fallback.New(), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	aePath := evalSave(t, filepath.Join(dir, "ae.safetensors"), "ae", map[string]int{"base": 2}, ae.Params())
	ae.Release()
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
		{"wrong kind", append([]string{"--ddpm_model", f.fm, "--out_dir", out}, lat...), []string{"--ddpm_model", "is a flow-matching checkpoint"}},
		{"AE as flow model", append([]string{"--fm_model", aePath, "--out_dir", out}, lat...), []string{"--fm_model", "is an autoencoder checkpoint"}},
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

// evalCohort writes tiny volume cohorts (X, Y, Z) = (16, 16, 8): normals N01–N06 under
// normals/, TTS patients T01–T06 under tts/ (a bright block added), val.csv (01–03), test.csv
// (04–06) and a metadata CSV that calls N06 an anomaly and has no row for T06, so T06 is left
// out and N06 counts as an anomaly (the seed's rules: metadata overrides the root's label).
func evalCohort(t *testing.T, dir string) (normals, tts, meta, val, test string) {
	t.Helper()
	const X, Y, Z = 16, 16, 8
	r := rand.New(rand.NewPCG(11, 12))
	aff := [4][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	normals, tts = filepath.Join(dir, "normals"), filepath.Join(dir, "tts")
	var metaCSV strings.Builder
	metaCSV.WriteString("ID,age,sex,case,roi_file\n")
	for _, root := range []string{normals, tts} {
		for i := 1; i <= 6; i++ {
			pid := "N0" + strconv.Itoa(i)
			if root == tts {
				pid = "T0" + strconv.Itoa(i)
			}
			vox := make([]float64, X*Y*Z)
			for j := range vox {
				x, y, z := j%X, j/X%Y, j/(X*Y)
				vox[j] = -600 + 200*math.Sin(0.4*float64(x+y)) + 50*float64(z) + 40*r.NormFloat64()
				if root == tts && x >= 4 && x < 12 && y >= 4 && y < 12 && z >= 2 {
					vox[j] += 700
				}
			}
			if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := nifti.WriteFile(filepath.Join(root, pid, pid+"_roi.nii.gz"), nifti.NewImage([]int{X, Y, Z}, nifti.Float32, vox, aff)); err != nil {
				t.Fatal(err)
			}
			switch pid {
			case "T06":
			case "N06":
				metaCSV.WriteString(pid + ",60,F,1," + pid + "_roi.nii.gz\n")
			default:
				c := "0"
				if root == tts {
					c = "1"
				}
				metaCSV.WriteString(pid + ",60,F," + c + "," + pid + "_roi.nii.gz\n")
			}
		}
	}
	meta, val, test = filepath.Join(dir, "meta.csv"), filepath.Join(dir, "val.csv"), filepath.Join(dir, "test.csv")
	for p, body := range map[string]string{
		meta: metaCSV.String(),
		val:  "patient_id\nN01\nN02\nN03\nT01\nT02\nT03\n",
		test: "patient_id\nN04\nN05\nN06\nT04\nT05\nT06\n",
	} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return normals, tts, meta, val, test
}

// evalSave writes an untrained model: the volume path is about plumbing, not detection.
func evalSave(t *testing.T, path, kind string, cfg map[string]int, params *nn.ParamSet) string {
	t.Helper()
	if err := checkpoint.Save(path, &checkpoint.Checkpoint{Kind: kind, Config: cfg, Model: params.StateDict()}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEvalVolumes(t *testing.T) {
	dir := t.TempDir()
	normals, tts, meta, val, test := evalCohort(t, dir)
	dev := fallback.New()
	ae, err := nn.NewTiny3DAE(dev, 2, 1) // latents (16, 1, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer ae.Release()
	aePath := evalSave(t, filepath.Join(dir, "ae.safetensors"), "ae", map[string]int{"base": 2}, ae.Params())
	velPath := func(name string, in int) string {
		cfg := nn.VelocityConfig{InChannels: in, BaseChannels: 8, TimeDim: 8, NumResBlocks: 1}
		m, err := nn.NewVelocity(dev, cfg, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		return evalSave(t, filepath.Join(dir, name), "fm", cfg.Map(), m.Params())
	}
	fm := velPath("fm.safetensors", 16)
	out := filepath.Join(dir, "eval")
	vol := []string{"--normal_root", normals, "--tts_root", tts, "--metadata_csv", meta, "--val_csv", val, "--test_csv", test,
		"--ae_model_path", aePath, "--device", "cpu"}
	args := append([]string{"eval", "--fm_model", fm, "--out_dir", out, "--k_values", "2", "--fm_t_ranges", "small", "--bootstrap", "20", "--expected_shape", "16,16,8"}, vol...)
	code, stdo, stde := evalRun(t, args...)
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s%s", code, stdo, stde)
	}
	var rows []eval.Row
	evalReadJSON(t, filepath.Join(out, "comparison.json"), &rows)
	if len(rows) != 2 || rows[0].Method != "AE reconstruction" || rows[1].Method != "Flow matching" || rows[1].Params != "mse_multi_t K=2 t_range=small [0,0.3]" {
		t.Fatalf("comparison.json rows %+v; want AE reconstruction, then Flow matching with its only grid point", rows)
	}
	if rows[0].Val == nil || rows[0].Val.NAnomaly != 3 || rows[0].Val.NNormal != 3 {
		t.Errorf("AE row val metrics %+v; want 3 anomalies and 3 normals", rows[0].Val)
	}
	// T06 has no metadata row (skipped); N06's metadata says anomaly.
	wantIDs, wantLabels := []string{"N04", "N05", "N06", "T04", "T05"}, []int{0, 0, 1, 1, 1}
	sets := map[string]eval.ScoreSet{}
	for _, key := range []string{evalAE, evalFM} {
		s, err := eval.ReadScoresCSV(filepath.Join(out, "scores_"+key+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.IDs, wantIDs) || !slices.Equal(s.Labels, wantLabels) {
			t.Errorf("scores_%s.csv: ids %v labels %v; want %v %v", key, s.IDs, s.Labels, wantIDs, wantLabels)
		}
		sets[key] = s
	}
	for _, p := range []string{"roc_test.png", "hist_ae_recon.png", "hist_flow_matching.png"} {
		evalCheckPNG(t, filepath.Join(out, p))
	}
	if _, err := os.Stat(filepath.Join(out, "tuning_ae_recon.csv")); err == nil {
		t.Errorf("tuning_ae_recon.csv written for a method without a grid")
	}

	// The AE baseline agrees with `latentad score --method ae_recon` on the same patients:
	// the same float32 operations on the same device, so equal up to summation order.
	again := filepath.Join(dir, "ae_normals.csv")
	if code, o, e := evalRun(t, "score", "--method", "ae_recon", "--model", aePath, "--root", normals, "--include_csv", test,
		"--metadata_csv", meta, "--expected_shape", "16,16,8", "--device", "cpu", "--out", again); code != 0 {
		t.Fatalf("score ae_recon: exit %d\n%s%s", code, o, e)
	}
	ref, err := eval.ReadScoresCSV(again)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ref.IDs {
		j := slices.Index(wantIDs, id)
		if j < 0 || math.Abs(ref.Scores[i]-sets[evalAE].Scores[j]) > 1e-6*ref.Scores[i] {
			t.Errorf("%s: score ae_recon %v, eval %v", id, ref.Scores[i], sets[evalAE].Scores[max(j, 0)])
		}
	}

	// A second run reuses the encoded latents and gives the same scores.
	code, stdo, stde = evalRun(t, args...)
	if code != 0 || strings.Count(stde, "using cached latents") != 4 {
		t.Fatalf("second eval: exit %d, want the 4 cached latent sets (2 roots × 2 splits) reused\n%s%s", code, stdo, stde)
	}
	s, err := eval.ReadScoresCSV(filepath.Join(out, "scores_"+evalFM+".csv"))
	if err != nil || !slices.Equal(s.Scores, sets[evalFM].Scores) {
		t.Errorf("second run scores %v (%v); first %v", s.Scores, err, sets[evalFM].Scores)
	}

	normalsOnly := filepath.Join(dir, "normals_only.csv")
	if err := os.WriteFile(normalsOnly, []byte("ID\nN04\nN05\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"channels", []string{"--fm_model", velPath("fm8.safetensors", 8)}, []string{"val split", "16 channels", "expects 8"}},
		{"one class", []string{"--fm_model", fm, "--test_csv", normalsOnly}, []string{"test split", "2 normal and 0 anomalous", "ROC-AUC needs both classes"}},
		{"one class AE only", []string{"--test_csv", normalsOnly}, []string{"test split", "2 normal and 0 anomalous", "ROC-AUC needs both classes"}},
		{"missing root", []string{"--fm_model", fm, "--tts_root", filepath.Join(dir, "none")}, []string{"--tts_root", "none"}},
		{"no split CSV", []string{"--fm_model", fm, "--test_csv", ""}, []string{"--test_csv"}},
		{"shape", []string{"--fm_model", fm, "--expected_shape", "16,16,16"}, []string{"N01"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := append(append([]string{"eval", "--out_dir", filepath.Join(dir, "bad")}, vol...), c.args...)
			if !slices.Contains(a, "--expected_shape") {
				a = append(a, "--expected_shape", "16,16,8")
			}
			code, _, errs := evalRun(t, a...)
			if code == 0 {
				t.Fatalf("exit 0; want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q does not mention %q", errs, w)
				}
			}
		})
	}
}
