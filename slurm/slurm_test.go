package slurm

import (
	"strings"
	"testing"
)

func study() Study {
	return Study{Latentad: "/opt/latentad", Work: "/scratch/s", Root: "/data/cohort", TrainCSV: "/data/train.csv", TestCSV: "/data/test.csv",
		AEModel: "/m/ae.safetensors", Shards: 8, MaxParallel: 3, Trainer: "train-fm", Method: "mse_multi_t",
		TrainFlags: []string{"--epochs", "50"}, ScoreFlags: []string{"--seed", "42"},
		Array: Resources{Partition: "cpu", Time: "00:30:00", CPUsPerTask: 2, Mem: "4G"},
		Train: Resources{Partition: "cpu", Time: "08:00:00", CPUsPerTask: 8, Mem: "16G", GPUs: 1}}
}

// TestGenerate: each script asks for its resources, the arrays cover the shards, and
// submit.sh chains the jobs with afterok in pipeline order.
func TestGenerate(t *testing.T) {
	sc, err := Generate(study())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"extract.sbatch", []string{"#SBATCH --array=0-7%3", "#SBATCH --partition=cpu", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=4G", "#SBATCH --time=00:30:00",
			"extract --shard slurm/8", "--include_csv /data/train.csv", "--include_csv /data/test.csv", "'/scratch/s/parts/train_{i}'"}},
		{"train.sbatch", []string{"#SBATCH --gres=gpu:1", "#SBATCH --mem=16G", "merge-latents /scratch/s/parts/train_* --out /scratch/s/latents/train", "train-fm --latents /scratch/s/latents/train --out_dir /scratch/s/runs/train-fm --epochs 50"}},
		{"score.sbatch", []string{"#SBATCH --array=0-7%3", "score --shard slurm/8 --model /scratch/s/runs/train-fm/model.safetensors", "--method mse_multi_t --seed 42"}},
		{"merge.sbatch", []string{"merge-scores /scratch/s/parts/scores_*.csv --out /scratch/s/scores.csv"}},
		{"eval.sbatch", []string{"metrics --scores /scratch/s/scores.csv --json > /scratch/s/metrics.json"}},
		{"submit.sh", []string{"--dependency=afterok:$extract train.sbatch", "--dependency=afterok:$train score.sbatch", "--dependency=afterok:$score merge.sbatch", "--dependency=afterok:$merge eval.sbatch"}},
	} {
		for _, w := range tc.want {
			if !strings.Contains(sc.Text[tc.file], w) {
				t.Errorf("%s lacks %q:\n%s", tc.file, w, sc.Text[tc.file])
			}
		}
	}
	if strings.Contains(sc.Text["extract.sbatch"], "--gres") {
		t.Error("the array tasks ask for the training job's GPU")
	}
}

func TestGenerateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Study)
		want string
	}{
		{"no root", func(s *Study) { s.Root = "" }, "--root"},
		{"no shards", func(s *Study) { s.Shards = 0 }, "--shards"},
		{"trainer", func(s *Study) { s.Trainer = "train-ae" }, "--trainer"},
	} {
		s := study()
		tc.edit(&s)
		if _, err := Generate(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"a/b.csv": "a/b.csv", "my dir": "'my dir'", "it's": `'it'\''s'`, "": "''", "x_{i}": "'x_{i}'"} {
		if got := q(in); got != want {
			t.Errorf("q(%q) = %s, want %s", in, got, want)
		}
	}
}
