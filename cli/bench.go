package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/compute/optime"
	"github.com/latentad/latentad/flow"
	"github.com/latentad/latentad/internal/rng"
	"github.com/latentad/latentad/metal"
	"github.com/latentad/latentad/nn"
)

func init() {
	register(&ucli.Command{
		Name:      "bench",
		Usage:     "measure the model and its kernels on this machine",
		UsageText: "latentad bench [--device cpu] [--batch_size 4] [--repeat 5] [--json]",
		Description: "Times, best of --repeat runs after a warm-up: forward_s (no-grad forward of the default\n" +
			"LatentVelocityEstimator on (B,128,8,16,16)), train_step_s (flow-matching forward + backward +\n" +
			"Adam), ae_encode_s (Tiny3DAE encoder on one (1,1,64,128,128) volume), and the kernels at\n" +
			"the model's shapes: Conv3d 64→64 forward / backward-data / backward-weight in GFLOP/s,\n" +
			"GroupNorm, SiLU and AXPY in GB/s. pyref/bench_torch.py prints the same fields for PyTorch.\n" +
			"Convolution GFLOP/s count the direct algorithm's 2·N·Co·Ci·27·D·H·W FLOPs; the CPU runs these\n" +
			"3×3×3 convolutions as Winograd F(2,3) with fewer multiplications, so the figures compare time.\n" +
			"--ops adds where a training step's time goes: every device op's share, by op and shapes.",
		Flags: []ucli.Flag{
			intFlag("batch_size", 4, "batch B"),
			intFlag("repeat", 5, "timed runs per figure (the best is reported)"),
			boolFlag("json", "print one JSON line"),
			boolFlag("skip_model", "kernels only"),
			boolFlag("ops", "also time each device op of a training step (train_step_ops)"),
			stringFlag("cpuprofile", "", "write a Go CPU profile of the run to this file (go tool pprof)"),
			deviceFlag(),
		},
		Action: runBench,
	})
}

type benchOut struct {
	Device     string             `json:"device"`
	Threads    int                `json:"threads"`
	Batch      int                `json:"batch_size"`
	ForwardS   float64            `json:"forward_s,omitempty"`
	TrainStepS float64            `json:"train_step_s,omitempty"`
	AEEncodeS  float64            `json:"ae_encode_s,omitempty"`
	Kernels    map[string]float64 `json:"kernels"`
	Chip       string             `json:"chip,omitempty"`
	PeakGFLOPS float64            `json:"peak_gflops,omitempty"` // the chip's estimated fp32 peak
	PctPeak    float64            `json:"conv3d_fwd_pct_peak,omitempty"`
	Ops        []opTime           `json:"train_step_ops,omitempty"`
}

// opTime is one op (name and shapes) of a training step: calls and milliseconds per step.
type opTime struct {
	Op    string  `json:"op"`
	Calls int     `json:"calls"`
	MS    float64 `json:"ms"`
}

// benchModel is the default velocity model with a random (B,128,8,16,16) batch, a
// flow-matching trainer and Adam: what forward_s, train_step_s and --ops measure.
type benchModel struct {
	dev      compute.Device
	m        *nn.Velocity
	z, batch *compute.Tensor
	tr       *flow.Trainer
	adam     *nn.Adam
	r        *rand.Rand
}

func newBenchModel(dev compute.Device, b int, r *rand.Rand) *benchModel {
	m, err := nn.NewVelocity(dev, nn.DefaultVelocityConfig(), 1)
	if err != nil {
		panic(err) // the default configuration is valid
	}
	z := randTensor(dev, r, b, 128, 8, 16, 16)
	return &benchModel{dev: dev, m: m, z: z, batch: dev.Alloc(z.Shape()...),
		tr: flow.NewTrainer(dev, m), adam: nn.NewAdam(dev, m.Params(), 1e-4), r: r}
}

// step is one training step. Step overwrites its batch, so each step copies z in, as
// training uploads a batch.
func (bm *benchModel) step() {
	bm.dev.Copy(bm.batch, bm.z)
	bm.tr.Step(bm.batch, bm.r)
	bm.adam.Step()
}

func (bm *benchModel) release() {
	bm.tr.Release()
	bm.adam.Release()
	bm.m.Release()
	bm.dev.Release(bm.batch)
	bm.dev.Release(bm.z)
}

// stepOps times every device op of n flow-matching training steps at batch b (after one
// warm-up step) through optime, and returns them per step, longest first.
func stepOps(dev compute.Device, b, n int, r *rand.Rand) []opTime {
	_, async := dev.(*metal.Device)
	od := optime.Wrap(dev, async)
	bm := newBenchModel(od, b, r)
	defer bm.release()
	bm.step()
	od.Reset()
	for range n {
		bm.step()
	}
	var out []opTime
	for _, s := range od.Stats() {
		out = append(out, opTime{Op: s.Op, Calls: s.Calls / n, MS: s.Total.Seconds() * 1e3 / float64(n)})
	}
	return out
}

// timer runs f once to warm up, then n times, and returns the shortest wall time in
// seconds, with the device synchronised around each run. A device fault is kept in err.
type timer struct {
	dev compute.Device
	n   int
	err error
}

// kernel times an op that only enqueues work: on Metal by GPU timestamps over many
// dispatches in one submission (no host round trips), elsewhere like best.
func (tm *timer) kernel(f func()) float64 {
	if gpu, ok := tm.dev.(*metal.Device); ok {
		if s, ok := gpu.TimeGPU(10*tm.n, f); ok {
			return s
		}
	}
	return tm.best(f)
}

// best times f by the wall clock; f may read results back (a training step reads its loss).
func (tm *timer) best(f func()) float64 {
	f()
	tm.err = errors.Join(tm.err, tm.dev.Sync())
	b := 1e300
	for i := 0; i < tm.n; i++ {
		t0 := time.Now()
		f()
		tm.err = errors.Join(tm.err, tm.dev.Sync())
		b = min(b, time.Since(t0).Seconds())
	}
	return b
}

func randTensor(dev compute.Device, r *rand.Rand, shape ...int) *compute.Tensor {
	h := make([]float32, compute.Numel(shape))
	rng.Normal(r, h)
	return compute.FromHost(dev, h, shape...)
}

func runBench(c *ucli.Context) error {
	dev, err := openDevice(c.String("device"))
	if err != nil {
		return err
	}
	B, n := c.Int("batch_size"), c.Int("repeat")
	if B < 1 || n < 1 {
		return usageError("--batch_size and --repeat must be at least 1")
	}
	if p := c.String("cpuprofile"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r := rng.New(1)
	tm := &timer{dev: dev, n: n}
	out := benchOut{Device: dev.Name(), Threads: runtime.GOMAXPROCS(0), Batch: B, Kernels: map[string]float64{}}

	// Kernels at the residual blocks' shapes.
	x := randTensor(dev, r, B, 64, 8, 16, 16)
	y := dev.Alloc(B, 64, 8, 16, 16)
	w := randTensor(dev, r, 64, 64, 3, 3, 3)
	bias := randTensor(dev, r, 64)
	dw, db := dev.Alloc(64, 64, 3, 3, 3), dev.Alloc(64)
	flops := 2.0 * float64(B*64*64*27*8*16*16)
	out.Kernels["conv3d_fwd_gflops"] = flops / tm.kernel(func() { dev.Conv3d(x, w, bias, y, compute.Conv3x3) }) / 1e9
	out.Kernels["conv3d_bwd_data_gflops"] = flops / tm.kernel(func() { dev.Conv3dBackwardData(y, w, x, compute.Conv3x3) }) / 1e9
	out.Kernels["conv3d_bwd_weight_gflops"] = flops / tm.kernel(func() { dev.Conv3dBackwardWeight(x, y, dw, db, compute.Conv3x3) }) / 1e9
	gamma, beta := randTensor(dev, r, 64), randTensor(dev, r, 64)
	mean, rstd := dev.Alloc(B, 8), dev.Alloc(B, 8)
	bytes := float64(4 * x.Len())
	out.Kernels["group_norm_fwd_gbs"] = 2 * bytes / tm.kernel(func() { dev.GroupNormForward(x, gamma, beta, y, mean, rstd, 8, 1e-5) }) / 1e9
	out.Kernels["silu_fwd_gbs"] = 2 * bytes / tm.kernel(func() { dev.ActForward(compute.SiLU, x, y) }) / 1e9
	out.Kernels["axpy_gbs"] = 3 * bytes / tm.kernel(func() { dev.AXPY(0.5, x, y) }) / 1e9
	for _, t := range []*compute.Tensor{x, y, w, bias, dw, db, gamma, beta, mean, rstd} {
		dev.Release(t)
	}

	if !c.Bool("skip_model") {
		bm := newBenchModel(dev, B, r)
		t := make([]float32, B)
		for i := range t {
			t[i] = r.Float32()
		}
		out.ForwardS = tm.best(func() { bm.m.Forward(bm.z, t) })
		out.TrainStepS = tm.best(bm.step)
		bm.release()

		ae, err := nn.NewTiny3DAE(dev, 16, 1)
		if err != nil {
			return err
		}
		vol := randTensor(dev, r, 1, 1, 64, 128, 128)
		out.AEEncodeS = tm.best(func() { ae.Encode(vol) })
		ae.Release()
		dev.Release(vol)
	}

	if c.Bool("ops") {
		out.Ops = stepOps(dev, B, n, r)
	}
	if tm.err != nil {
		return fmt.Errorf("%s: %w", dev.Name(), tm.err)
	}
	if gpu, ok := dev.(*metal.Device); ok {
		chip := gpu.Chip()
		out.Chip, out.PeakGFLOPS = chip.Name, chip.PeakGFLOPS
		if chip.PeakGFLOPS > 0 {
			out.PctPeak = 100 * out.Kernels["conv3d_fwd_gflops"] / chip.PeakGFLOPS
		}
	}
	if c.Bool("json") {
		b, _ := json.Marshal(out)
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprintf(stdout, "device %s, %d threads, batch %d (best of %d)\n", out.Device, out.Threads, B, n)
	if out.Chip != "" {
		fmt.Fprintf(stdout, "  chip %s, fp32 peak ≈ %.0f GFLOP/s; conv3d forward at %.1f%% of it\n", out.Chip, out.PeakGFLOPS, out.PctPeak)
	}
	if !c.Bool("skip_model") {
		fmt.Fprintf(stdout, "  forward_s      %8.4f\n  train_step_s   %8.4f\n  ae_encode_s    %8.4f\n", out.ForwardS, out.TrainStepS, out.AEEncodeS)
	}
	for _, k := range []string{"conv3d_fwd_gflops", "conv3d_bwd_data_gflops", "conv3d_bwd_weight_gflops", "group_norm_fwd_gbs", "silu_fwd_gbs", "axpy_gbs"} {
		fmt.Fprintf(stdout, "  %-26s %8.2f\n", k, out.Kernels[k])
	}
	if len(out.Ops) > 0 {
		var total float64
		for _, o := range out.Ops {
			total += o.MS
		}
		fmt.Fprintf(stdout, "training step by op (mean of %d steps, %.1f ms in ops):\n", n, total)
		for _, o := range out.Ops {
			fmt.Fprintf(stdout, "  %8.2f ms %5.1f%% %4d×  %s\n", o.MS, 100*o.MS/total, o.Calls, o.Op)
		}
	}
	return nil
}
