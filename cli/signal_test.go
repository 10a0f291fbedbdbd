package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latentad/latentad/checkpoint"
)

// TestMain lets a test run latentad as a child process (LATENTAD_MAIN_ARGS, tab-separated),
// so a real SIGINT can be sent to it.
func TestMain(m *testing.M) {
	if a := os.Getenv("LATENTAD_MAIN_ARGS"); a != "" {
		os.Exit(Main(append([]string{"latentad"}, strings.Split(a, "\t")...)))
	}
	os.Exit(m.Run())
}

// TestCtrlCLeavesCheckpoint: SIGINT in the middle of training writes last.safetensors with
// the exact state, exits 130, and --resume continues from it to the end.
func TestCtrlCLeavesCheckpoint(t *testing.T) {
	tmp := t.TempDir()
	lat := latentTask(t, filepath.Join(tmp, "lat"), 64, 0, 1)
	out := filepath.Join(tmp, "run")
	args := append([]string{"train-fm", "--latents", lat, "--out_dir", out, "--epochs", "100000", "--batch_size", "2"}, tinyModel...)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LATENTAD_MAIN_ARGS="+strings.Join(args, "\t"))
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the first epoch's log, so that training is under way, then interrupt.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(out, "loss_history.csv")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("training never finished an epoch:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("want exit 130 after SIGINT, got %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "--resume") {
		t.Errorf("the message does not say how to resume: %s", errb.String())
	}
	ck, err := checkpoint.Load(filepath.Join(out, "last.safetensors"))
	if err != nil {
		t.Fatalf("checkpoint after Ctrl-C: %v", err)
	}
	if ck.Epoch < 1 || ck.Optim == nil {
		t.Errorf("checkpoint after Ctrl-C: epoch %d, optimiser state %v", ck.Epoch, ck.Optim != nil)
	}
	// It resumes (to a nearby end, so the test stays short).
	mustRun(t, append([]string{"train-fm", "--latents", lat, "--out_dir", out, "--epochs", itoa(ck.Epoch + 1), "--batch_size", "2", "--resume", out}, tinyModel...)...)
	if _, err := checkpoint.Load(filepath.Join(out, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
