package slurm_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/data/synth"
	"github.com/latentad/latentad/eval"
	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/nn"
)

// cluster is a one-node Slurm started by a test: a private munged, slurmctld and slurmd,
// everything (key, sockets, state, logs, pid files) inside one temporary folder.
type cluster struct {
	dir, conf string
	env       []string
}

// freePort asks the kernel for an unused TCP port.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stopPidFile ends the daemon whose pid a file holds, and waits for it to go.
func stopPidFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// startCluster starts the daemons or skips, saying why, when this machine cannot run them.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real-Slurm test skipped: it must run as root to start munged, slurmctld and slurmd (CI runs as root)")
	}
	for _, b := range []string{"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "runuser"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("real-Slurm test skipped: %s not found (apt-get install slurm-wlm munge, as .ci/run does)", b)
		}
	}
	mu, err := user.Lookup("munge")
	if err != nil {
		t.Skip("real-Slurm test skipped: no munge user (apt-get install munge)")
	}
	uid, _ := strconv.Atoi(mu.Uid)
	gid, _ := strconv.Atoi(mu.Gid)
	// The munge user must reach its folder: t.TempDir's folders are root's and 0700.
	dir, err := os.MkdirTemp("", "latentad-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	c := &cluster{dir: dir, conf: filepath.Join(dir, "slurm.conf")}

	md := filepath.Join(dir, "munge")
	os.Mkdir(md, 0o755) // munged wants its socket folder searchable by all
	key := make([]byte, 1024)
	rand.Read(key)
	keyPath := filepath.Join(md, "munge.key")
	if err := os.WriteFile(keyPath, key, 0o400); err != nil {
		t.Fatal(err)
	}
	os.Chown(md, uid, gid)
	os.Chown(keyPath, uid, gid)
	sock := filepath.Join(md, "munge.socket")
	mpid := filepath.Join(md, "munged.pid")
	t.Cleanup(func() { stopPidFile(mpid) })
	if out, err := exec.Command("runuser", "-u", "munge", "--", "munged", "--socket="+sock, "--key-file="+keyPath,
		"--log-file="+filepath.Join(md, "munged.log"), "--pid-file="+mpid, "--seed-file="+filepath.Join(md, "munged.seed")).CombinedOutput(); err != nil {
		t.Fatalf("munged does not start: %v: %s", err, out)
	}

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ = strings.Cut(host, ".")
	for _, d := range []string{"state", "spool", "logs"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	conf := fmt.Sprintf(`ClusterName=latentadtest
SlurmctldHost=%[1]s
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=%[2]s
CredType=cred/munge
SlurmctldPort=%[3]d
SlurmdPort=%[4]d
StateSaveLocation=%[5]s/state
SlurmdSpoolDir=%[5]s/spool
SlurmctldPidFile=%[5]s/slurmctld.pid
SlurmdPidFile=%[5]s/slurmd.pid
SlurmctldLogFile=%[5]s/slurmctld.log
SlurmdLogFile=%[5]s/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
NodeName=%[1]s CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=main Nodes=%[1]s Default=YES MaxTime=INFINITE State=UP
`, host, sock, freePort(t), freePort(t), dir)
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append(os.Environ(), "SLURM_CONF="+c.conf)
	t.Cleanup(func() {
		stopPidFile(filepath.Join(dir, "slurmd.pid"))
		stopPidFile(filepath.Join(dir, "slurmctld.pid"))
	})
	for _, d := range []string{"slurmctld", "slurmd"} {
		cmd := exec.Command(d, "-f", c.conf)
		cmd.Env = c.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s -f %s: %v: %s\n%s", d, c.conf, err, out, c.logs())
		}
	}
	// The controller answers once it is up.
	for i := 0; ; i++ {
		if _, err := c.run("sinfo", "-h"); err == nil {
			break
		}
		if i > 100 {
			t.Fatalf("slurmctld does not answer\n%s", c.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

func (c *cluster) logs() string {
	var b strings.Builder
	for _, f := range []string{"slurmctld.log", "slurmd.log", "munge/munged.log"} {
		d, _ := os.ReadFile(filepath.Join(c.dir, f))
		if len(d) > 3000 {
			d = d[len(d)-3000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", f, d)
	}
	return b.String()
}

func (c *cluster) run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = c.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, e.String())
	}
	return o.String(), err
}

// wait polls squeue until no job is left, or fails after limit.
func (c *cluster) wait(t *testing.T, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		out, err := c.run("squeue", "-h", "-o", "%i %T %r")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) == "" {
			return
		}
		if strings.Contains(out, "DependencyNeverSatisfied") {
			t.Fatalf("a job failed, so its dependants never start:\n%s", out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still queued after %v:\n%s\n%s", limit, out, c.logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func mustExec(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

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
	if x.Len() != y.Len() || x.Len() == 0 {
		t.Fatalf("%s has %d rows, %s %d", a, x.Len(), b, y.Len())
	}
	for i := range x.Scores {
		if x.IDs[i] != y.IDs[i] || x.Labels[i] != y.Labels[i] || x.Scores[i] != y.Scores[i] {
			t.Errorf("row %d: %s,%d,%v vs %s,%d,%v", i, x.IDs[i], x.Labels[i], x.Scores[i], y.IDs[i], y.Labels[i], y.Scores[i])
		}
	}
}

// TestRealSlurm runs a study's generated scripts on a real one-node Slurm with 4-task arrays:
// the merged latents and scores equal an unsharded run bit for bit; then one score task is
// cancelled, merge-scores names the missing shard, and re-submitting the array completes
// only that one (issue 17).
func TestRealSlurm(t *testing.T) {
	c := startCluster(t)
	start := time.Now()
	dir := c.dir
	bin := filepath.Join(dir, "latentad")
	mustExec(t, os.Environ(), "go", "build", "-o", bin, "../cmd/latentad")

	root := filepath.Join(dir, "cohort")
	if _, err := synth.Generate(synth.Config{Root: root, Shape: [3]int{16, 16, 8}, NNormal: 12, NAnomaly: 4, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	ae, err := nn.NewTiny3DAE(fallback.New(), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	aePath := filepath.Join(dir, "ae.safetensors")
	if err := checkpoint.Save(aePath, &checkpoint.Checkpoint{Kind: "ae", Config: map[string]int{"base": 2}, Model: ae.Params().StateDict()}); err != nil {
		t.Fatal(err)
	}
	work, jobs := filepath.Join(dir, "work"), filepath.Join(dir, "jobs")
	vol := "--expected_shape 16 16 8 --device cpu"
	mustExec(t, os.Environ(), bin, "slurm", "--out_dir", jobs, "--work", work, "--latentad", bin, "--root", root,
		"--metadata_csv", filepath.Join(root, "Combined_Labels.csv"), "--train_csv", filepath.Join(root, "train.csv"),
		"--test_csv", filepath.Join(root, "test.csv"), "--ae_model_path", aePath, "--shards", "4",
		"--train_flags=--epochs 2 --batch_size 2 --base_channels 8 --time_dim 8 --num_res_blocks 1 --device cpu",
		"--score_flags=--n_samples 2 --device cpu", "--volume_flags="+vol,
		"--cpus_per_task", "1", "--mem", "200M", "--train_cpus", "1", "--train_mem", "200M", "--time", "00:05:00", "--train_time", "00:05:00")
	mustExec(t, c.env, "bash", filepath.Join(jobs, "submit.sh"))
	c.wait(t, 3*time.Minute)
	if _, err := os.Stat(filepath.Join(work, "metrics.json")); err != nil {
		logs, _ := filepath.Glob(filepath.Join(work, "logs", "*"))
		var b strings.Builder
		for _, l := range logs {
			d, _ := os.ReadFile(l)
			fmt.Fprintf(&b, "--- %s\n%s", l, d)
		}
		t.Fatalf("the study did not reach eval: %v\n%s\n%s", err, b.String(), c.logs())
	}
	t.Logf("extract → train → score → merge → eval on Slurm: %v", time.Since(start).Round(time.Second))

	// The same steps without Slurm or shards.
	env := os.Environ()
	one := filepath.Join(dir, "one")
	mustExec(t, env, bin, append([]string{"extract", "--ae_model_path", aePath, "--root", root, "--metadata_csv", filepath.Join(root, "Combined_Labels.csv"),
		"--include_csv", filepath.Join(root, "test.csv"), "--out", one}, strings.Fields(vol)...)...)
	for _, f := range []string{"latents.npy", "index.csv"} {
		a, _ := os.ReadFile(filepath.Join(one, f))
		b, _ := os.ReadFile(filepath.Join(work, "latents", "test", f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("merged %s differs from the unsharded extract's", f)
		}
	}
	oneScores := filepath.Join(dir, "one.csv")
	model := filepath.Join(work, "runs", "train-fm", "model.safetensors")
	mustExec(t, env, bin, "score", "--model", model, "--latents", one, "--n_samples", "2", "--device", "cpu", "--out", oneScores)
	sameScores(t, filepath.Join(work, "scores.csv"), oneScores)

	// Fault: one task of the score array is cancelled before it runs.
	parts := filepath.Join(work, "parts")
	old, _ := filepath.Glob(filepath.Join(parts, "scores_*"))
	for _, p := range old {
		os.Remove(p)
	}
	jid, err := c.run("sbatch", "--parsable", "--hold", filepath.Join(jobs, "score.sbatch"))
	if err != nil {
		t.Fatal(err)
	}
	jid = strings.TrimSpace(strings.Split(jid, ";")[0])
	if _, err := c.run("scancel", jid+"_2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run("scontrol", "release", jid); err != nil {
		t.Fatal(err)
	}
	c.wait(t, time.Minute)
	shardFiles := func() []string {
		f, _ := filepath.Glob(filepath.Join(parts, "scores_*.csv"))
		return f
	}
	if got := shardFiles(); len(got) != 3 {
		t.Fatalf("after cancelling task 2: shard files %v, want 0, 1 and 3", got)
	}
	cmd := exec.Command(bin, append(append([]string{"merge-scores"}, shardFiles()...), "--out", filepath.Join(dir, "m.csv"))...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing shard(s) 2/4") {
		t.Fatalf("merge-scores with task 2 cancelled: %v, %s; want it to name shard 2/4", err, out)
	}
	mtimes := map[string]time.Time{}
	for _, p := range shardFiles() {
		fi, _ := os.Stat(p)
		mtimes[p] = fi.ModTime()
	}
	// Re-submitting the whole array completes only the missing shard.
	jid2, err := c.run("sbatch", "--parsable", filepath.Join(jobs, "score.sbatch"))
	if err != nil {
		t.Fatal(err)
	}
	jid2 = strings.TrimSpace(strings.Split(jid2, ";")[0])
	c.wait(t, time.Minute)
	for i := 0; i < 4; i++ {
		log, err := os.ReadFile(filepath.Join(work, "logs", fmt.Sprintf("score_%s_%d.out", jid2, i)))
		if err != nil {
			t.Fatal(err)
		}
		if skipped := strings.Contains(string(log), "already complete"); skipped != (i != 2) {
			t.Errorf("re-submitted task %d: skipped %v, want %v:\n%s", i, skipped, i != 2, log)
		}
	}
	for p, m := range mtimes {
		if fi, _ := os.Stat(p); !fi.ModTime().Equal(m) {
			t.Errorf("%s was rewritten by the re-submitted array", p)
		}
	}
	merged := filepath.Join(dir, "merged.csv")
	mustExec(t, env, bin, append(append([]string{"merge-scores"}, shardFiles()...), "--out", merged)...)
	sameScores(t, merged, oneScores)
	t.Logf("whole test on Slurm: %v", time.Since(start).Round(time.Second))
}
