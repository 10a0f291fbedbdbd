package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/slurm"
)

func init() {
	register(&ucli.Command{
		Name:      "slurm",
		Usage:     "write sbatch scripts that run a study on a Slurm cluster",
		UsageText: "latentad slurm --root cohort/ --train_csv train.csv --test_csv test.csv --ae_model_path ae.safetensors --work /scratch/me/study --shards 16 --out_dir jobs/",
		Description: "Writes to --out_dir: extract.sbatch (a job array: each task encodes rows i, i+n, … of the\n" +
			"train and test splits with `extract --shard slurm`), train.sbatch (merge-latents of both\n" +
			"splits, then --trainer on the training latents), score.sbatch (a job array of `score\n" +
			"--shard slurm` on the test latents), merge.sbatch (merge-scores → WORK/scores.csv),\n" +
			"eval.sbatch (metrics → WORK/metrics.json) and submit.sh, which submits them in that order,\n" +
			"each with --dependency=afterok on the one before. Every shard writes its own files with a\n" +
			"provenance file beside them; the merges check every shard is there exactly once and from\n" +
			"the same model, method, seed and cohort. Re-running submit.sh after a failure (or\n" +
			"re-submitting one array) skips the shards already complete. Logs go to WORK/logs.\n" +
			"Paths are written as given: make them absolute, or run submit.sh from where they resolve.",
		Flags: []ucli.Flag{
			stringFlag("out_dir", "slurm_jobs", "folder for the scripts"),
			stringFlag("work", "", "study folder on shared storage: parts/, latents/, runs/, logs/, scores.csv (required)"),
			stringFlag("latentad", "", "the latentad binary as the nodes see it (default: this one's absolute path)"),
			stringFlag("root", "", "cohort folder: <root>/<pid>/<pid>_roi.nii.gz (required)"),
			stringFlag("metadata_csv", "", "metadata CSV (labels)"),
			stringFlag("train_csv", "", "split CSV of the normal training patients (required)"),
			stringFlag("test_csv", "", "split CSV of the patients to score (required)"),
			stringFlag("ae_model_path", "", "autoencoder checkpoint (required)"),
			intFlag("shards", 4, "tasks in each job array"),
			intFlag("max_parallel", 0, "at most this many array tasks at once (sbatch --array=0-N%K); 0: no limit"),
			stringFlag("trainer", "train-fm", "train-fm or train-ddpm"),
			stringFlag("train_flags", "", "further flags of the trainer, e.g. --train_flags='--epochs 200 --batch_size 8'"),
			stringFlag("method", "mse_multi_t", "score method"),
			stringFlag("score_flags", "", "further score flags, e.g. --score_flags='--n_samples 10 --seed 42'"),
			stringFlag("volume_flags", "", "volume flags for extract, e.g. --volume_flags='--expected_shape 128 128 64'"),
			stringFlag("partition", "", "#SBATCH --partition of every job (empty: the cluster's default)"),
			stringFlag("account", "", "#SBATCH --account of every job"),
			stringFlag("time", "01:00:00", "#SBATCH --time of the array tasks, merge and eval"),
			intFlag("cpus_per_task", 2, "#SBATCH --cpus-per-task of an array task"),
			stringFlag("mem", "8G", "#SBATCH --mem of an array task"),
			stringFlag("train_time", "12:00:00", "#SBATCH --time of the training job"),
			intFlag("train_cpus", 8, "#SBATCH --cpus-per-task of the training job"),
			stringFlag("train_mem", "16G", "#SBATCH --mem of the training job"),
			intFlag("gpus", 0, "#SBATCH --gres=gpu:N of the training job"),
		},
		Action: runSlurm,
	})
}

func runSlurm(c *ucli.Context) error {
	bin := c.String("latentad")
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return usageError("--latentad: cannot find this binary (%v); give its path on the nodes", err)
		}
		bin = exe
	}
	st := slurm.Study{
		Latentad: bin, Work: c.String("work"), Root: c.String("root"), MetadataCSV: c.String("metadata_csv"),
		TrainCSV: c.String("train_csv"), TestCSV: c.String("test_csv"), AEModel: c.String("ae_model_path"),
		Shards: c.Int("shards"), MaxParallel: c.Int("max_parallel"), Trainer: c.String("trainer"),
		TrainFlags: strings.Fields(c.String("train_flags")), Method: c.String("method"),
		ScoreFlags: strings.Fields(c.String("score_flags")), VolumeFlags: strings.Fields(c.String("volume_flags")),
		Array: slurm.Resources{Partition: c.String("partition"), Account: c.String("account"), Time: c.String("time"),
			CPUsPerTask: c.Int("cpus_per_task"), Mem: c.String("mem")},
		Train: slurm.Resources{Partition: c.String("partition"), Account: c.String("account"), Time: c.String("train_time"),
			CPUsPerTask: c.Int("train_cpus"), Mem: c.String("train_mem"), GPUs: c.Int("gpus")},
	}
	if _, ok := methodKinds[st.Method]; !ok || st.Method == "ae_recon" {
		return usageError("--method %q: choose a latent method of %s (ae_recon scores volumes, not the extracted latents)", st.Method, methodNames())
	}
	if want := map[string]string{"train-fm": "fm", "train-ddpm": "ddpm"}[st.Trainer]; want != "" && methodKinds[st.Method] != want {
		return usageError("--method %s needs %s model, but --trainer %s trains %s one", st.Method, kindName(methodKinds[st.Method]), st.Trainer, kindName(want))
	}
	sc, err := slurm.Generate(st)
	if err != nil {
		return usageError("%v", err)
	}
	dir := c.String("out_dir")
	if err := sc.Write(dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s → %s; submit with: bash %s\n", strings.Join(sc.Names, ", "), dir, filepath.Join(dir, "submit.sh"))
	return nil
}
