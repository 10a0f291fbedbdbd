// Package slurm writes the sbatch scripts that run a latentad study on a Slurm cluster:
// an extract array, a training job, a score array, a merge and an evaluation, chained by
// afterok dependencies so that each starts only when the one before succeeded.
package slurm

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/latentad/latentad/internal/atomicfile"
)

// Resources are the #SBATCH requests of one job.
type Resources struct {
	Partition   string // empty: the cluster's default
	Account     string
	Time        string // e.g. 01:00:00
	CPUsPerTask int
	Mem         string // e.g. 8G
	GPUs        int    // --gres=gpu:N when > 0
}

// Study is what the scripts run.
type Study struct {
	Latentad    string // the latentad binary on the cluster's nodes
	Work        string // folder for parts, latents, runs, logs (absolute is best)
	Root        string // cohort folder
	MetadataCSV string
	TrainCSV    string // split of the normal training patients
	TestCSV     string // split of the patients to score
	AEModel     string // autoencoder checkpoint
	Shards      int    // tasks per array
	MaxParallel int    // array throttle (%N); 0: no limit
	Trainer     string // train-fm or train-ddpm
	TrainFlags  []string
	Method      string
	ScoreFlags  []string // further score flags (n_samples, seed, …)
	VolumeFlags []string // --expected_shape …, --hu_window …, shared by extract
	Array       Resources
	Train       Resources
}

// Validate says what is missing.
func (s Study) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"--root", s.Root}, {"--train_csv", s.TrainCSV}, {"--test_csv", s.TestCSV},
		{"--ae_model_path", s.AEModel}, {"--work", s.Work}, {"--latentad", s.Latentad},
	} {
		if f.v == "" {
			return fmt.Errorf("%s is required", f.name)
		}
	}
	if s.Shards < 1 {
		return fmt.Errorf("--shards must be at least 1, got %d", s.Shards)
	}
	if s.Trainer != "train-fm" && s.Trainer != "train-ddpm" {
		return fmt.Errorf("--trainer %q: train-fm or train-ddpm", s.Trainer)
	}
	return nil
}

// Scripts are the generated files, by name, in submission order.
type Scripts struct {
	Names []string
	Text  map[string]string
}

// q quotes a word for the shell.
func q(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '=' || r == ':' || r == ',' || r == '+' ||
			r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func cmd(words ...string) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = q(w)
	}
	return strings.Join(out, " ")
}

func header(name, work string, r Resources, array string) string {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "#SBATCH --job-name=latentad-%s\n", name)
	if array != "" {
		fmt.Fprintf(&b, "#SBATCH --array=%s\n", array)
		fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(work, "logs", name+"_%A_%a.out"))
	} else {
		fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(work, "logs", name+"_%j.out"))
	}
	if r.Partition != "" {
		fmt.Fprintf(&b, "#SBATCH --partition=%s\n", r.Partition)
	}
	if r.Account != "" {
		fmt.Fprintf(&b, "#SBATCH --account=%s\n", r.Account)
	}
	if r.Time != "" {
		fmt.Fprintf(&b, "#SBATCH --time=%s\n", r.Time)
	}
	if r.CPUsPerTask > 0 {
		fmt.Fprintf(&b, "#SBATCH --cpus-per-task=%d\n", r.CPUsPerTask)
	}
	if r.Mem != "" {
		fmt.Fprintf(&b, "#SBATCH --mem=%s\n", r.Mem)
	}
	if r.GPUs > 0 {
		fmt.Fprintf(&b, "#SBATCH --gres=gpu:%d\n", r.GPUs)
	}
	b.WriteString("set -euo pipefail\n")
	return b.String()
}

// Generate builds the scripts: extract.sbatch (array), train.sbatch, score.sbatch (array),
// merge.sbatch, eval.sbatch and submit.sh, which submits them with afterok dependencies.
func Generate(s Study) (*Scripts, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	w := s.Work
	lat := func(set string) string { return filepath.Join(w, "latents", set) }
	part := func(set string) string { return filepath.Join(w, "parts", set+"_{i}") }
	array := "0-" + strconv.Itoa(s.Shards-1)
	shardArg := "slurm/" + strconv.Itoa(s.Shards) // re-submitting one task (--array=2) keeps its shard number
	if s.MaxParallel > 0 {
		array += "%" + strconv.Itoa(s.MaxParallel)
	}
	meta := []string{}
	if s.MetadataCSV != "" {
		meta = []string{"--metadata_csv", s.MetadataCSV}
	}
	var extract strings.Builder
	extract.WriteString(header("extract", w, s.Array, array))
	extract.WriteString("# Each task encodes rows i, i+n, … of both splits; a complete shard is skipped when re-run.\n")
	for _, set := range []struct{ name, csv string }{{"train", s.TrainCSV}, {"test", s.TestCSV}} {
		args := append([]string{s.Latentad, "extract", "--shard", shardArg, "--ae_model_path", s.AEModel, "--root", s.Root, "--include_csv", set.csv}, meta...)
		args = append(append(args, s.VolumeFlags...), "--out", part(set.name))
		extract.WriteString(cmd(args...) + "\n")
	}

	var train strings.Builder
	train.WriteString(header("train", w, s.Train, ""))
	train.WriteString("# Join the extracted shards; the merge names any missing, duplicate or foreign one.\n")
	for _, set := range []string{"train", "test"} {
		glob := q(filepath.Join(w, "parts")) + "/" + set + "_*"
		train.WriteString(cmd(s.Latentad, "merge-latents") + " " + glob + " " + cmd("--out", lat(set)) + "\n")
	}
	run := filepath.Join(w, "runs", s.Trainer)
	train.WriteString(cmd(append([]string{s.Latentad, s.Trainer, "--latents", lat("train"), "--out_dir", run}, s.TrainFlags...)...) + "\n")

	var score strings.Builder
	score.WriteString(header("score", w, s.Array, array))
	scoreArgs := []string{s.Latentad, "score", "--shard", shardArg, "--model", filepath.Join(run, "model.safetensors"), "--latents", lat("test")}
	if s.Method != "" {
		scoreArgs = append(scoreArgs, "--method", s.Method)
	}
	scoreArgs = append(append(scoreArgs, s.ScoreFlags...), "--out", filepath.Join(w, "parts", "scores_{i}.csv"))
	score.WriteString(cmd(scoreArgs...) + "\n")

	var merge strings.Builder
	merge.WriteString(header("merge", w, Resources{Partition: s.Array.Partition, Account: s.Array.Account, Time: s.Array.Time}, ""))
	merge.WriteString(cmd(s.Latentad, "merge-scores") + " " + q(filepath.Join(w, "parts")) + "/scores_*.csv " + cmd("--out", filepath.Join(w, "scores.csv")) + "\n")

	var ev strings.Builder
	ev.WriteString(header("eval", w, Resources{Partition: s.Array.Partition, Account: s.Array.Account, Time: s.Array.Time}, ""))
	ev.WriteString(cmd(s.Latentad, "metrics", "--scores", filepath.Join(w, "scores.csv"), "--json") + " > " + q(filepath.Join(w, "metrics.json")) + "\n")

	var sub strings.Builder
	sub.WriteString("#!/bin/bash\n# Submits the study; each job starts when the one before ended well (afterok).\n")
	sub.WriteString("# Re-running it after a failure redoes only the missing shards: complete ones are skipped.\nset -euo pipefail\n")
	sub.WriteString("cd \"$(dirname \"$0\")\"\n")
	fmt.Fprintf(&sub, "mkdir -p %s %s\n", q(filepath.Join(w, "logs")), q(filepath.Join(w, "parts")))
	sub.WriteString("extract=$(sbatch --parsable extract.sbatch)\n")
	sub.WriteString("train=$(sbatch --parsable --dependency=afterok:$extract train.sbatch)\n")
	sub.WriteString("score=$(sbatch --parsable --dependency=afterok:$train score.sbatch)\n")
	sub.WriteString("merge=$(sbatch --parsable --dependency=afterok:$score merge.sbatch)\n")
	sub.WriteString("eval=$(sbatch --parsable --dependency=afterok:$merge eval.sbatch)\n")
	sub.WriteString("echo \"submitted: extract $extract, train $train, score $score, merge $merge, eval $eval\"\n")

	return &Scripts{
		Names: []string{"extract.sbatch", "train.sbatch", "score.sbatch", "merge.sbatch", "eval.sbatch", "submit.sh"},
		Text: map[string]string{"extract.sbatch": extract.String(), "train.sbatch": train.String(), "score.sbatch": score.String(),
			"merge.sbatch": merge.String(), "eval.sbatch": ev.String(), "submit.sh": sub.String()},
	}, nil
}

// Write puts the scripts in dir, executable, each atomically.
func (sc *Scripts) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, n := range sc.Names {
		p := filepath.Join(dir, n)
		if err := atomicfile.WriteBytes(p, []byte(sc.Text[n])); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}
