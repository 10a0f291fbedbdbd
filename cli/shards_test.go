package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/data/synth"
	"github.com/latentad/latentad/eval"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/nn"
)

// shardStudy is a small synthetic cohort with an untrained autoencoder and velocity model:
// sharding must not change a single bit whatever the weights.
type shardStudy struct {
	root, ae, fm, fm2 string
	vol               []string
}

func newShardStudy(t *testing.T, dir string, n int) shardStudy {
	t.Helper()
	root := filepath.Join(dir, "cohort")
	if _, err := synth.Generate(synth.Config{Root: root, Shape: [3]int{16, 16, 8}, NNormal: n - 2, NAnomaly: 2, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	dev := fallback.New()
	ae, err := nn.NewTiny3DAE(dev, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := shardStudy{root: root, ae: filepath.Join(dir, "ae.safetensors"), fm: filepath.Join(dir, "fm.safetensors"), fm2: filepath.Join(dir, "fm2.safetensors")}
	if err := checkpoint.Save(s.ae, &checkpoint.Checkpoint{Kind: "ae", Config: map[string]int{"base": 2}, Model: ae.Params().StateDict()}); err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{s.fm, s.fm2} {
		fm, err := nn.NewVelocity(dev, nn.VelocityConfig{InChannels: 16, BaseChannels: 8, TimeDim: 8, NumResBlocks: 1}, uint64(2+i))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.Save(p, &checkpoint.Checkpoint{Kind: "fm", Config: fm.Config().Map(), Model: fm.Params().StateDict()}); err != nil {
			t.Fatal(err)
		}
	}
	s.vol = []string{"--expected_shape", "16", "16", "8", "--device", "cpu", "--metadata_csv", filepath.Join(root, "Combined_Labels.csv")}
	return s
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil {
		t.Fatalf("%v %v", err1, err2)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ", a, b)
	}
}

// sameScores checks two scores CSVs hold the same ids, labels and float64 scores bit for bit.
func sameScores(t *testing.T, a, b string) {
	t.Helper()
	x, err := eval.ReadScoresCSV(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := eval.ReadScoresCSV(b)
	if err != nil {
		t.Fatal(err)
	}
	if x.Len() != y.Len() {
		t.Fatalf("%s has %d rows, %s %d", a, x.Len(), b, y.Len())
	}
	for i := range x.Scores {
		if x.IDs[i] != y.IDs[i] || x.Labels[i] != y.Labels[i] || x.Scores[i] != y.Scores[i] {
			t.Errorf("row %d: %s,%d,%v vs %s,%d,%v", i, x.IDs[i], x.Labels[i], x.Scores[i], y.IDs[i], y.Labels[i], y.Scores[i])
		}
	}
}

// TestShardedBitIdentical: extract and score split into 1, 3 and 4 shards and merged give
// exactly the unsharded outputs (issue 17); running a complete shard again skips it.
func TestShardedBitIdentical(t *testing.T) {
	tmp := t.TempDir()
	s := newShardStudy(t, tmp, 7)
	one := filepath.Join(tmp, "one")
	mustRun(t, append([]string{"extract", "--ae_model_path", s.ae, "--root", s.root, "--out", one}, s.vol...)...)
	scoreArgs := []string{"score", "--model", s.fm, "--method", "mse_multi_t", "--n_samples", "3", "--device", "cpu"}
	oneScores := filepath.Join(tmp, "one.csv")
	mustRun(t, append(scoreArgs, "--latents", one, "--out", oneScores)...)
	for _, n := range []int{1, 3, 4} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			d := filepath.Join(tmp, "n"+strconv.Itoa(n))
			var lat, sc []string
			for i := 0; i < n; i++ {
				sh := strconv.Itoa(i) + "/" + strconv.Itoa(n)
				mustRun(t, append([]string{"extract", "--ae_model_path", s.ae, "--root", s.root, "--shard", sh, "--out", filepath.Join(d, "lat_{i}")}, s.vol...)...)
				lat = append(lat, filepath.Join(d, "lat_"+strconv.Itoa(i)))
				mustRun(t, append(scoreArgs, "--latents", one, "--shard", sh, "--out", filepath.Join(d, "scores_{i}.csv"))...)
				sc = append(sc, filepath.Join(d, "scores_"+strconv.Itoa(i)+".csv"))
			}
			if n == 1 { // one shard is the whole run: its own files are the result
				sameFile(t, filepath.Join(lat[0], "latents.npy"), filepath.Join(one, "latents.npy"))
				sameScores(t, sc[0], oneScores)
				return
			}
			merged := filepath.Join(d, "merged")
			mustRun(t, append(append([]string{"merge-latents"}, lat[n-1:]...), append(lat[:n-1], "--out", merged)...)...)
			sameFile(t, filepath.Join(merged, "latents.npy"), filepath.Join(one, "latents.npy"))
			sameFile(t, filepath.Join(merged, "index.csv"), filepath.Join(one, "index.csv"))
			mergedScores := filepath.Join(d, "scores.csv")
			mustRun(t, append(append([]string{"merge-scores"}, sc...), "--out", mergedScores)...)
			sameScores(t, mergedScores, oneScores)
			// Scoring the merged latents with a shard again: complete, so skipped.
			out := mustRun(t, append(scoreArgs, "--latents", one, "--shard", "1/"+strconv.Itoa(n), "--out", filepath.Join(d, "scores_{i}.csv"))...)
			if !strings.Contains(out, "already complete") {
				t.Errorf("re-running a complete shard did not skip it: %s", out)
			}
		})
	}
}

// TestMergeNamesBadShards: a missing shard, a duplicate, and shards from another model or
// seed are each refused, naming the file or shard (issue 17).
func TestMergeNamesBadShards(t *testing.T) {
	tmp := t.TempDir()
	s := newShardStudy(t, tmp, 5)
	lat := filepath.Join(tmp, "lat")
	mustRun(t, append([]string{"extract", "--ae_model_path", s.ae, "--root", s.root, "--out", lat}, s.vol...)...)
	score := func(name, model, seed string, i int) string {
		p := filepath.Join(tmp, name+"_"+strconv.Itoa(i)+".csv")
		mustRun(t, "score", "--model", model, "--latents", lat, "--n_samples", "2", "--seed", seed, "--shard", strconv.Itoa(i)+"/3", "--out", p, "--device", "cpu")
		return p
	}
	a0, a1, a2 := score("a", s.fm, "42", 0), score("a", s.fm, "42", 1), score("a", s.fm, "42", 2)
	otherModel, otherSeed := score("m", s.fm2, "42", 2), score("s", s.fm, "7", 2)
	// A shard file cut short after it was written.
	cut := filepath.Join(tmp, "cut_1.csv")
	b, _ := os.ReadFile(a1)
	os.WriteFile(cut, b[:len(b)-5], 0o644)
	b, _ = os.ReadFile(a1 + ".shard.json")
	os.WriteFile(cut+".shard.json", b, 0o644)
	for _, tc := range []struct {
		name  string
		files []string
		want  []string
	}{
		{"missing", []string{a0, a2}, []string{"missing shard(s) 1/3"}},
		{"duplicate", []string{a0, a1, a2, a1}, []string{"shard 1/3 given 2 times", a1}},
		{"other model", []string{a0, a1, otherModel}, []string{otherModel, "foreign", "model"}},
		{"other seed", []string{a0, a1, otherSeed}, []string{otherSeed, "foreign", "seed is 7"}},
		{"cut short", []string{a0, cut, a2}, []string{cut, "contents differ"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := run(t, append(append([]string{"merge-scores"}, tc.files...), "--out", filepath.Join(tmp, "m.csv"))...)
			if code == 0 {
				t.Fatal("merge accepted the shards")
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("error %q does not say %q", errs, w)
				}
			}
		})
	}
	// merge-latents: a missing extract shard and one from another autoencoder.
	ae2 := filepath.Join(tmp, "ae2.safetensors")
	ae, _ := nn.NewTiny3DAE(fallback.New(), 2, 9)
	if err := checkpoint.Save(ae2, &checkpoint.Checkpoint{Kind: "ae", Config: map[string]int{"base": 2}, Model: ae.Params().StateDict()}); err != nil {
		t.Fatal(err)
	}
	ext := func(aePath, dir string, i int) string {
		mustRun(t, append([]string{"extract", "--ae_model_path", aePath, "--root", s.root, "--shard", strconv.Itoa(i) + "/2", "--out", filepath.Join(tmp, dir)}, s.vol...)...)
		return filepath.Join(tmp, dir)
	}
	l0, l1, f1 := ext(s.ae, "l0", 0), ext(s.ae, "l1", 1), ext(ae2, "f1", 1)
	_ = l1
	for _, tc := range []struct {
		files []string
		want  string
	}{{[]string{l0}, "missing shard(s) 1/2"}, {[]string{l0, f1}, f1 + " is foreign: its model"}} {
		code, _, errs := run(t, append(append([]string{"merge-latents"}, tc.files...), "--out", filepath.Join(tmp, "ml"))...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("merge-latents %v: exit %d, %q; want an error saying %q", tc.files, code, errs, tc.want)
		}
	}
	// --shard slurm outside a job array, and without {i} in --out.
	t.Setenv("SLURM_ARRAY_TASK_ID", "")
	if code, _, errs := run(t, "score", "--model", s.fm, "--latents", lat, "--shard", "slurm", "--out", filepath.Join(tmp, "x.csv")); code == 0 || !strings.Contains(errs, "SLURM_ARRAY_TASK_ID") {
		t.Errorf("--shard slurm outside Slurm: exit %d, %q", code, errs)
	}
	t.Setenv("SLURM_ARRAY_TASK_ID", "1")
	t.Setenv("SLURM_ARRAY_TASK_COUNT", "3")
	if code, _, errs := run(t, "score", "--model", s.fm, "--latents", lat, "--shard", "slurm", "--out", filepath.Join(tmp, "x.csv")); code == 0 || !strings.Contains(errs, "{i}") {
		t.Errorf("--shard slurm without {i}: exit %d, %q", code, errs)
	}
}
