// Package train is the one training loop behind train-fm, train-ddpm and train-ae: seeded
// shuffling, batches, Adam, a progress bar and per-epoch log lines, the loss history as CSV,
// checkpoints as the seed wrote them (checkpoint_epochNNN, best_model, model) plus `last`
// for resuming, exact resume, a checkpoint on Ctrl-C, and a stop on a NaN or Inf loss.
//
// Randomness is keyed, not sequential: epoch e shuffles with the stream (seed, 1, e) and
// batch b of epoch e draws its noise from (seed, 2, e, b). A run resumed at any batch
// therefore continues exactly as the uninterrupted run would have.
package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/latentad/latentad/internal/atomicfile"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/internal/progress"
	"github.com/latentad/latentad/internal/rng"
	"github.com/latentad/latentad/nn"
)

// Objective computes one batch's loss and leaves the gradients in the model's parameters.
// flow.Trainer and ddpm.Trainer are Objectives. Step may overwrite z0 (Run uploads every
// batch afresh), so a trainer can use it as scratch instead of holding another batch.
type Objective interface {
	Step(z0 *compute.Tensor, r *rand.Rand) float64
}

// Config is a training run.
type Config struct {
	Epochs    int
	BatchSize int
	LR        float64
	Seed      uint64
	SaveEvery int    // write checkpoint_epochNNN every SaveEvery epochs (0: never)
	OutDir    string // checkpoints and loss_history.csv go here

	// What the checkpoints record about the model.
	Kind     string // "fm", "ddpm" or "ae"
	Config   map[string]int
	Schedule *checkpoint.Schedule
	Args     map[string]any

	Resume string    // a checkpoint (or a folder holding last.safetensors) to continue from
	Log    io.Writer // per-epoch lines; nil for none
	Bar    io.Writer // progress bar; nil for none
}

// Result says how a run ended.
type Result struct {
	Epochs   int       // epochs completed
	Losses   []float64 // epoch-mean loss of every completed epoch
	BestLoss float64
	Last     string // path of the last checkpoint written
}

// ErrInterrupted is returned when the context was cancelled (Ctrl-C); a checkpoint of the
// exact state was written first, and Result.Last names it.
var ErrInterrupted = errors.New("training interrupted")

// state is what Extra carries so a run can resume exactly.
type state struct {
	NextEpoch int       `json:"next_epoch"` // 1-based epoch to run next
	NextBatch int       `json:"next_batch"` // batch within NextEpoch to run next
	EpochSum  float64   `json:"epoch_sum"`  // sum of batch losses so far in NextEpoch
	History   []float64 `json:"history"`    // epoch-mean losses of the completed epochs
}

// best is the lowest epoch-mean loss so far (+Inf before the first epoch ends).
func (s state) best() float64 {
	b := math.Inf(1)
	for _, l := range s.History {
		b = math.Min(b, l)
	}
	return b
}

// last is the latest epoch-mean loss (0 before the first epoch ends).
func (s state) last() float64 {
	if len(s.History) == 0 {
		return 0
	}
	return s.History[len(s.History)-1]
}

// Checkpoint names inside OutDir.
const (
	LastName  = "last.safetensors"
	BestName  = "best_model.safetensors"
	FinalName = "model.safetensors"
)

// EpochName is the periodic checkpoint of epoch e.
func EpochName(e int) string { return fmt.Sprintf("checkpoint_epoch%03d.safetensors", e) }

// Run trains params with obj on data (N, …) on dev. It returns ErrInterrupted (with a
// checkpoint written) when ctx is cancelled between batches.
func Run(ctx context.Context, dev compute.Device, params *nn.ParamSet, obj Objective, data compute.Array, cfg Config) (*Result, error) {
	if err := data.Check(); err != nil {
		return nil, err
	}
	N := data.Shape[0]
	switch {
	case N == 0:
		return nil, errors.New("no training samples")
	case cfg.BatchSize < 1:
		return nil, fmt.Errorf("batch_size must be at least 1, got %d", cfg.BatchSize)
	case cfg.Epochs < 1:
		return nil, fmt.Errorf("epochs must be at least 1, got %d", cfg.Epochs)
	case cfg.LR <= 0:
		return nil, fmt.Errorf("lr must be positive, got %g", cfg.LR)
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("out_dir: %w", err)
	}
	adam := nn.NewAdam(dev, params, cfg.LR)
	defer adam.Release()
	st := state{NextEpoch: 1}
	if cfg.Resume != "" {
		var err error
		if st, err = resume(cfg, params, adam); err != nil {
			return nil, err
		}
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "resuming from %s at epoch %d, batch %d\n", cfg.Resume, st.NextEpoch, st.NextBatch)
		}
	}

	per := len(data.Data) / N
	nb := (N + cfg.BatchSize - 1) / cfg.BatchSize
	batches := map[int]*compute.Tensor{} // by batch size: the last batch may be smaller
	defer func() {
		for _, t := range batches {
			dev.Release(t)
		}
	}()
	res := &Result{}
	save := func(name string, s state, loss float64) error {
		p := filepath.Join(cfg.OutDir, name)
		if err := saveCheckpoint(p, cfg, params, adam, s, loss); err != nil {
			return err
		}
		res.Last = p
		return nil
	}

	for epoch := st.NextEpoch; epoch <= cfg.Epochs; epoch++ {
		perm := rng.New(cfg.Seed, 1, uint64(epoch)).Perm(N)
		bar := progress.New(cfg.Bar, fmt.Sprintf("epoch %d/%d", epoch, cfg.Epochs), nb)
		bar.Add(st.NextBatch, "")
		start := time.Now()
		for b := st.NextBatch; b < nb; b++ {
			if ctx.Err() != nil {
				bar.Done()
				st.NextEpoch, st.NextBatch = epoch, b
				if err := save(LastName, st, st.last()); err != nil {
					return res, fmt.Errorf("interrupted, and the checkpoint could not be written: %w", err)
				}
				res.Epochs, res.Losses, res.BestLoss = epoch-1, st.History, st.best()
				return res, ErrInterrupted
			}
			lo, hi := b*cfg.BatchSize, min((b+1)*cfg.BatchSize, N)
			bs := hi - lo
			x := batches[bs]
			if x == nil {
				shape := append([]int{bs}, data.Shape[1:]...)
				x = dev.Alloc(shape...)
				batches[bs] = x
			}
			// Sample by sample straight from the data set: no batch-sized host copy.
			for i := lo; i < hi; i++ {
				j := perm[i]
				dev.Upload(x.Sample(i-lo, i-lo+1), data.Data[j*per:(j+1)*per])
			}
			loss := obj.Step(x, rng.New(cfg.Seed, 2, uint64(epoch), uint64(b)))
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				bar.Done()
				kept := "no checkpoint was written yet"
				if res.Last != "" {
					kept = "the last good checkpoint is " + res.Last
				} else if cfg.Resume != "" {
					kept = "the last good checkpoint is " + cfg.Resume
				}
				return res, fmt.Errorf("loss is %v at epoch %d, batch %d: training diverged (try a lower --lr); %s", loss, epoch, b+1, kept)
			}
			adam.Step()
			st.EpochSum += loss
			bar.Add(1, "loss "+strconv.FormatFloat(loss, 'g', 5, 64))
		}
		bar.Done()
		mean := st.EpochSum / float64(nb)
		improved := mean < st.best()
		st.History = append(st.History, mean)
		st.NextEpoch, st.NextBatch, st.EpochSum = epoch+1, 0, 0
		if err := writeHistory(cfg.OutDir, st.History); err != nil {
			return res, err
		}
		if cfg.SaveEvery > 0 && epoch%cfg.SaveEvery == 0 {
			if err := save(EpochName(epoch), st, mean); err != nil {
				return res, err
			}
		}
		if improved {
			if err := save(BestName, st, mean); err != nil {
				return res, err
			}
		}
		if err := save(LastName, st, mean); err != nil {
			return res, err
		}
		if cfg.Log != nil {
			mark := ""
			if improved {
				mark = " (best)"
			}
			fmt.Fprintf(cfg.Log, "epoch %d/%d  loss %.6f  %.1fs%s\n", epoch, cfg.Epochs, mean, time.Since(start).Seconds(), mark)
		}
	}
	if err := save(FinalName, st, st.last()); err != nil {
		return res, err
	}
	res.Epochs, res.Losses, res.BestLoss = cfg.Epochs, st.History, st.best()
	return res, nil
}

func saveCheckpoint(path string, cfg Config, params *nn.ParamSet, adam *nn.Adam, s state, loss float64) error {
	js, err := json.Marshal(s)
	if err != nil {
		return err
	}
	// Views, not copies, where the device allows: Save writes them out before anything
	// changes the parameters.
	step, m, v := adam.StateView()
	c := &checkpoint.Checkpoint{
		Kind:     cfg.Kind,
		Config:   cfg.Config,
		Schedule: cfg.Schedule,
		Epoch:    s.NextEpoch - 1,
		Loss:     loss,
		Args:     cfg.Args,
		Model:    params.StateView(),
		Optim:    &checkpoint.OptimState{Step: step, ExpAvg: m, ExpAvgSq: v},
		Extra:    map[string]string{"train_state": string(js)},
	}
	if err := checkpoint.Save(path, c); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	return nil
}

func resume(cfg Config, params *nn.ParamSet, adam *nn.Adam) (state, error) {
	p := cfg.Resume
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		p = filepath.Join(p, LastName)
	}
	c, err := checkpoint.Load(p)
	if err != nil {
		return state{}, fmt.Errorf("--resume: %w", err)
	}
	if c.Kind != "" && c.Kind != cfg.Kind {
		return state{}, fmt.Errorf("--resume %s: a %q checkpoint cannot continue a %q run", p, c.Kind, cfg.Kind)
	}
	if err := params.LoadStateDict(c.Model); err != nil {
		return state{}, fmt.Errorf("--resume %s: %w", p, err)
	}
	var st state
	if js, ok := c.Extra["train_state"]; ok {
		if err := json.Unmarshal([]byte(js), &st); err != nil {
			return state{}, fmt.Errorf("--resume %s: unreadable training state: %w", p, err)
		}
	} else {
		// A checkpoint without our state (e.g. the seed's .pth): continue after its epoch.
		st = state{NextEpoch: c.Epoch + 1}
	}
	if c.Optim != nil {
		if err := adam.LoadState(c.Optim.Step, c.Optim.ExpAvg, c.Optim.ExpAvgSq); err != nil {
			return state{}, fmt.Errorf("--resume %s: optimiser state: %w", p, err)
		}
	} else if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, "warning: %s has no usable optimiser state, so Adam starts afresh and the run will not equal an uninterrupted one\n", p)
	}
	if cfg.Log != nil {
		for _, n := range c.Notes {
			fmt.Fprintf(cfg.Log, "note: %s: %s\n", p, n)
		}
	}
	return st, nil
}

// writeHistory rewrites loss_history.csv (epoch,loss) atomically.
func writeHistory(dir string, h []float64) error {
	var sb strings.Builder
	sb.WriteString("epoch,loss\n")
	for i, l := range h {
		fmt.Fprintf(&sb, "%d,%s\n", i+1, strconv.FormatFloat(l, 'g', -1, 64))
	}
	return atomicfile.WriteBytes(filepath.Join(dir, "loss_history.csv"), []byte(sb.String()))
}
