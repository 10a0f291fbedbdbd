package cli

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/latentad/latentad/internal/atomicfile"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/ddpm"
	"github.com/latentad/latentad/eval"
	"github.com/latentad/latentad/flow"
	"github.com/latentad/latentad/internal/progress"
	"github.com/latentad/latentad/nn"
	"github.com/latentad/latentad/shard"
)

// methodKinds says which checkpoint kind each score method needs.
var methodKinds = map[string]string{
	"mse_multi_t":            "fm",
	"velocity_inconsistency": "fm",
	"round_trip":             "fm",
	"ddpm":                   "ddpm",
	"ddpm_small_t":           "ddpm",
	"ae_recon":               "ae",
}

func methodNames() string {
	return "mse_multi_t, velocity_inconsistency, round_trip, ddpm, ddpm_small_t, ae_recon"
}

func init() {
	register(&ucli.Command{
		Name:      "score",
		Usage:     "score latents (or volumes) with a trained model: higher = more anomalous",
		UsageText: "latentad score --model runs/fm/best_model.safetensors --latents test_latents/ --method mse_multi_t --out scores.csv",
		Description: "Methods (SPEC §3–4): mse_multi_t (recommended for flow matching), velocity_inconsistency,\n" +
			"round_trip (deterministic), ddpm, ddpm_small_t, and ae_recon (the autoencoder baseline on\n" +
			"volumes). --model is a latentad checkpoint or the seed's PyTorch .pth. Writes id,label,score\n" +
			"(labels from index.csv) and prints a summary. --shard i/n scores every n-th latent starting\n" +
			"at i, for a job array; join the parts with `latentad merge-scores`. " + shardRowsNote,
		Flags: append(scoreInputFlags(),
			stringFlag("model", "", "checkpoint to score with (required)"),
			stringFlag("method", "mse_multi_t", "score: "+methodNames()),
			intFlag("n_samples", 10, "draws K per sample (mse_multi_t, velocity_inconsistency, ddpm, ddpm_small_t)"),
			floatFlag("t_min", 0, "mse_multi_t / velocity_inconsistency: t ~ U[t_min, t_max)"),
			floatFlag("t_max", 1, "mse_multi_t / velocity_inconsistency: upper end of the t range"),
			intFlag("n_steps", 50, "round_trip: integration steps each way"),
			stringFlag("solver", "euler", "round_trip: euler (the seed's), heun or rk4"),
			intFlag("t_small", 100, "ddpm_small_t: t ~ randint[0, min(t_small, T))"),
			intFlag("timesteps", 1000, "DDPM steps T, for a .pth that does not carry its noise_schedule"),
			stringFlag("schedule_type", "cosine", "DDPM schedule for such a .pth: cosine or linear"),
			intFlag("seed", 42, "random seed of the draws"),
			intFlag("batch_size", 4, "latents per forward pass"),
			stringFlag("shard", "", "i/n or slurm: score only latents i, i+n, i+2n, … (0 ≤ i < n; {i} in --out is the shard number)"),
			stringFlag("out", "", "scores CSV to write (required)"),
			stringFlag("maps", "", "folder for per-sample anomaly maps (latent-resolution .npy; NIfTI overlays and PNGs when scoring volumes)"),
			deviceFlag(),
		),
		Action: runScore,
	})
}

// scoreModel is a loaded checkpoint ready to score.
type scoreModel struct {
	kind  string
	vel   *nn.Velocity
	ae    *nn.AE
	sched *ddpm.Schedule
}

func (m *scoreModel) release() {
	if m.vel != nil {
		m.vel.Release()
	}
	if m.ae != nil {
		m.ae.Release()
	}
}

// loadScoreModel loads --model for method, checking that the two fit.
func loadScoreModel(c *ucli.Context, dev compute.Device, path, method string) (*scoreModel, error) {
	want, ok := methodKinds[method]
	if !ok {
		return nil, usageError("--method %q: unknown; choose one of %s", method, methodNames())
	}
	if path == "" {
		return nil, usageError("--model is required: a checkpoint from train-fm, train-ddpm or train-ae (or the seed's .pth)")
	}
	ck, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	kind := ck.Kind
	if kind == "" { // a .pth that does not say: trust the method if the weights fit
		kind = want
		if want == "ae" && !hasPrefix(ck.Model, "enc.") || want != "ae" && !hasPrefix(ck.Model, "input_conv.") {
			kind = "unknown"
		}
	}
	if kind != want {
		return nil, usageError("--model %s is %s checkpoint, but --method %s needs %s one", path, kindName(kind), method, kindName(want))
	}
	m := &scoreModel{kind: kind}
	if kind == "ae" {
		if m.ae, err = aeFromCheckpoint(dev, ck, path); err != nil {
			return nil, err
		}
		return m, nil
	}
	if m.vel, err = velocityFromCheckpoint(dev, ck, path); err != nil {
		return nil, err
	}
	if kind == "ddpm" {
		T, typ := c.Int("timesteps"), c.String("schedule_type")
		if ck.Schedule != nil {
			T, typ = ck.Schedule.Timesteps, ck.Schedule.Type
		}
		if m.sched, err = ddpm.NewSchedule(typ, T); err != nil {
			m.release()
			return nil, usageError("%s: %v", path, err)
		}
	}
	return m, nil
}

func kindName(k string) string {
	switch k {
	case "fm":
		return "a flow-matching"
	case "ddpm":
		return "a DDPM"
	case "ae":
		return "an autoencoder"
	}
	return "an unrecognised"
}

func hasPrefix(sd map[string]compute.Array, p string) bool {
	for k := range sd {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// scoreParams collects the method settings from the flags.
func scoreParams(c *ucli.Context) (flow.Options, ddpm.Options, error) {
	fo := flow.Options{
		Samples: c.Int("n_samples"), TMin: c.Float64("t_min"), TMax: c.Float64("t_max"),
		Steps: c.Int("n_steps"), Solver: c.String("solver"), Seed: uint64(c.Int("seed")),
	}
	if err := fo.Validate(); err != nil {
		return fo, ddpm.Options{}, usageError("%v", err)
	}
	do := ddpm.Options{Samples: c.Int("n_samples"), Seed: uint64(c.Int("seed"))}
	if c.String("method") == "ddpm_small_t" {
		do.TMax = c.Int("t_small")
		if do.TMax < 1 {
			return fo, do, usageError("--t_small must be at least 1, got %d", do.TMax)
		}
	}
	return fo, do, nil
}

// batchScorer scores one batch of latents; maps may be nil.
type batchScorer func(z *compute.Tensor, idx []int, maps *compute.Tensor) ([]float64, error)

// latentScorer returns the scoring function of a flow or DDPM method.
func latentScorer(dev compute.Device, m *scoreModel, method string, fo flow.Options, do ddpm.Options) (batchScorer, func()) {
	if m.kind == "ddpm" {
		s := ddpm.NewScorer(dev, m.vel, m.sched)
		return func(z *compute.Tensor, idx []int, maps *compute.Tensor) ([]float64, error) {
			return s.Score(z, idx, do, maps)
		}, s.Release
	}
	s := flow.NewScorer(dev, m.vel)
	return func(z *compute.Tensor, idx []int, maps *compute.Tensor) ([]float64, error) {
		switch method {
		case "velocity_inconsistency":
			return s.VelocityInconsistency(z, idx, fo, maps)
		case "round_trip":
			return s.RoundTrip(z, fo, maps), nil
		}
		return s.MSEMultiT(z, idx, fo, maps), nil
	}, s.Release
}

// scoreLatents runs score over the selected rows of lat in batches; it returns one score per
// selected row and, when wantMaps, each row's latent-resolution map (D·H·W values).
func scoreLatents(dev compute.Device, lat compute.Array, rows []int, batch int, score batchScorer, wantMaps bool, bar *progress.Bar) ([]float64, [][]float32, error) {
	per := len(lat.Data) / lat.Shape[0]
	spatial := per / lat.Shape[1]
	out := make([]float64, 0, len(rows))
	var maps [][]float32
	bufs := map[int][2]*compute.Tensor{}
	defer func() {
		for _, b := range bufs {
			dev.Release(b[0])
			if b[1] != nil {
				dev.Release(b[1])
			}
		}
	}()
	host := make([]float32, batch*per)
	for lo := 0; lo < len(rows); lo += batch {
		hi := min(lo+batch, len(rows))
		bs := hi - lo
		for i := lo; i < hi; i++ {
			j := rows[i]
			copy(host[(i-lo)*per:(i-lo+1)*per], lat.Data[j*per:(j+1)*per])
		}
		b, ok := bufs[bs]
		if !ok {
			b[0] = dev.Alloc(append([]int{bs}, lat.Shape[1:]...)...)
			if wantMaps {
				b[1] = dev.Alloc(append([]int{bs, 1}, lat.Shape[2:]...)...)
			}
			bufs[bs] = b
		}
		dev.Upload(b[0], host[:bs*per])
		s, err := score(b[0], rows[lo:hi], b[1])
		if err != nil {
			return nil, nil, err
		}
		for i, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, fmt.Errorf("sample %d scored %v: the model produced non-finite values (a diverged checkpoint?)", rows[lo+i], v)
			}
		}
		out = append(out, s...)
		if wantMaps {
			mh := compute.ToHost(b[1])
			for i := 0; i < bs; i++ {
				maps = append(maps, mh[i*spatial:(i+1)*spatial])
			}
		}
		bar.Add(bs, "")
	}
	return out, maps, nil
}

// checkMapsDir fails early when --maps cannot be written, before any scoring.
func checkMapsDir(dir string) error {
	if dir == "" {
		return nil
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return usageError("--maps %s is a file; give a folder", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usageError("--maps %s: cannot create the folder: %v", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return usageError("--maps %s: folder is not writable: %v", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

func absOr(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// scoreResult is one scored run, as score writes it and eval reuses it.
type scoreResult struct {
	Rows   []int // cohort indices scored
	Scores []float64
	Maps   [][]float32 // per row, latent (or volume, for ae_recon) resolution
	Set    *latentSet
}

func runScore(c *ucli.Context) error {
	method := c.String("method")
	if _, ok := methodKinds[method]; !ok {
		return usageError("--method %q: unknown; choose one of %s", method, methodNames())
	}
	out := c.String("out")
	if out == "" {
		return usageError("--out is required: the scores CSV to write")
	}
	sp, slurm, err := shardOf(c)
	if err != nil {
		return err
	}
	if out, err = sp.Path(out, slurm); err != nil {
		return usageError("%v", err)
	}
	si, sn := sp.I, sp.N
	fo, do, err := scoreParams(c)
	if err != nil {
		return err
	}
	if c.Int("batch_size") < 1 {
		return usageError("--batch_size must be at least 1")
	}
	mapsDir := c.String("maps")
	if err := checkMapsDir(mapsDir); err != nil {
		return err
	}
	dev, err := openDevice(c.String("device"))
	if err != nil {
		return err
	}
	m, err := loadScoreModel(c, dev, c.String("model"), method)
	if err != nil {
		return err
	}
	defer m.release()
	var prov shard.Provenance
	sidecar := shard.SidecarPath(out, false)
	if sharded(sp, slurm) {
		if prov, err = scoreProvenance(c, sp, method); err != nil {
			return err
		}
		if skipComplete(sidecar, prov, out) {
			return nil
		}
	}

	var res *scoreResult
	if method == "ae_recon" {
		res, err = scoreAERecon(c, dev, m.ae, si, sn, mapsDir != "")
	} else {
		res, err = scoreLatentMethod(c, dev, m, method, fo, do, si, sn, mapsDir != "")
	}
	if err != nil {
		return err
	}
	if err := writeScores(out, res, sharded(sp, slurm)); err != nil {
		return err
	}
	if sharded(sp, slurm) {
		prov.Total = len(res.Set.Index)
		if n := res.Set.Array.Shape; len(n) > 0 {
			prov.Total = n[0]
		}
		if err := finishShard(sidecar, prov, out); err != nil {
			return err
		}
	}
	if mapsDir != "" {
		if err := writeMaps(mapsDir, res, method); err != nil {
			return err
		}
	}
	printScoreSummary(res, method, out)
	return nil
}

func scoreLatentMethod(c *ucli.Context, dev compute.Device, m *scoreModel, method string, fo flow.Options, do ddpm.Options, si, sn int, wantMaps bool) (*scoreResult, error) {
	lat, err := scoringLatents(c)
	if err != nil {
		return nil, err
	}
	if ch, want := lat.Array.Shape[1], m.vel.Config().InChannels; ch != want {
		return nil, fmt.Errorf("%s: latents have %d channels, but --model %s expects %d (was it trained on another autoencoder's latents?)", lat.Source, ch, c.String("model"), want)
	}
	var rows []int
	for i := si; i < lat.Array.Shape[0]; i += sn {
		rows = append(rows, i)
	}
	score, release := latentScorer(dev, m, method, fo, do)
	defer release()
	bar := progress.New(stderr, method, len(rows))
	defer bar.Done()
	scores, maps, err := scoreLatents(dev, lat.Array, rows, c.Int("batch_size"), score, wantMaps, bar)
	if err != nil {
		return nil, err
	}
	return &scoreResult{Rows: rows, Scores: scores, Maps: maps, Set: lat}, nil
}

// scoreAERecon is the autoencoder baseline: per-volume MSE of the reconstruction.
func scoreAERecon(c *ucli.Context, dev compute.Device, ae *nn.AE, si, sn int, wantMaps bool) (*scoreResult, error) {
	root := c.String("root")
	if root == "" {
		return nil, usageError("--method ae_recon scores volumes: give --root (and --include_csv, --metadata_csv)")
	}
	prep, err := preprocessFrom(c)
	if err != nil {
		return nil, err
	}
	cohort, err := data.ScanCohort(data.CohortOptions{Root: root, MetadataCSV: c.String("metadata_csv"), SplitCSV: c.String("include_csv"), DefaultLabel: -1})
	if err != nil {
		return nil, err
	}
	set := &latentSet{Source: root, Cohort: cohort, Prep: prep}
	res := &scoreResult{Set: set}
	bar := progress.New(stderr, "ae_recon", (len(cohort.Patients)-si+sn-1)/sn)
	defer bar.Done()
	for i := range cohort.Patients {
		p := cohort.Patients[i]
		set.Index = append(set.Index, data.IndexRow{ID: p.ID, Label: p.Label, Source: p.ROIPath})
		if i%sn != si {
			continue
		}
		vol, shape, err := loadForAE(p, prep, ae)
		if err != nil {
			return nil, err
		}
		x := compute.FromHost(dev, vol.Data, shape...)
		sq := dev.Alloc(shape...)
		per := dev.Alloc(1)
		dev.SqDiff(ae.Forward(x), x, sq)
		dev.MeanSample(sq, per)
		res.Rows = append(res.Rows, i)
		res.Scores = append(res.Scores, float64(compute.ToHost(per)[0]))
		if wantMaps {
			res.Maps = append(res.Maps, compute.ToHost(sq))
		}
		for _, t := range []*compute.Tensor{x, sq, per} {
			dev.Release(t)
		}
		bar.Add(1, p.ID)
	}
	return res, nil
}

// rowID and rowLabel name a scored row: from index.csv when there is one, else the row
// index and an empty label.
func (r *scoreResult) rowID(i int) string {
	j := r.Rows[i]
	if j < len(r.Set.Index) && r.Set.Index[j].ID != "" {
		return r.Set.Index[j].ID
	}
	return strconv.Itoa(j)
}

func (r *scoreResult) rowLabel(i int) int {
	j := r.Rows[i]
	if j < len(r.Set.Index) {
		return r.Set.Index[j].Label
	}
	return -1
}

func writeScores(path string, r *scoreResult, withIndex bool) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		head := []string{"id", "label", "score"}
		if withIndex {
			head = append(head, "index")
		}
		cw.Write(head)
		for i, s := range r.Scores {
			label := ""
			if l := r.rowLabel(i); l >= 0 {
				label = strconv.Itoa(l)
			}
			rec := []string{r.rowID(i), label, strconv.FormatFloat(s, 'g', -1, 64)}
			if withIndex {
				rec = append(rec, strconv.Itoa(r.Rows[i]))
			}
			cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	})
}

// labelled returns the scores and labels of the rows whose label is known.
func (r *scoreResult) labelled() ([]float64, []int) {
	var s []float64
	var l []int
	for i, v := range r.Scores {
		if lb := r.rowLabel(i); lb >= 0 {
			s = append(s, v)
			l = append(l, lb)
		}
	}
	return s, l
}

func printScoreSummary(r *scoreResult, method, out string) {
	var mean float64
	for _, s := range r.Scores {
		mean += s / float64(len(r.Scores))
	}
	fmt.Fprintf(stdout, "%s: scored %d samples, mean score %.6g → %s\n", method, len(r.Scores), mean, out)
	s, l := r.labelled()
	sum, err := eval.Evaluate(s, l, eval.Options{})
	if err != nil {
		return // unlabelled or one class: nothing more to say
	}
	fmt.Fprintf(stdout, "ROC-AUC %.4f  PR-AUC %.4f  anomaly mean %.6g  normal mean %.6g  (n = %d anomaly, %d normal; Mann-Whitney p = %.3g)\n",
		sum.ROCAUC, sum.PRAUC, sum.AnomalyMean, sum.NormalMean, sum.NAnomaly, sum.NNormal, sum.MWPValue)
}

// writeMaps writes each row's map as <id>_map.npy (D, H, W) in dir.
func writeMaps(dir string, r *scoreResult, method string) error {
	for i, m := range r.Maps {
		shape := mapShape(r, len(m))
		if err := data.WriteNPY(filepath.Join(dir, safeName(r.rowID(i))+"_map.npy"), compute.Array{Shape: shape, Data: m}); err != nil {
			return err
		}
	}
	if r.Set.Cohort != nil {
		if err := writeVolumeMaps(dir, r); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%d %s maps → %s\n", len(r.Maps), method, dir)
	return nil
}

func mapShape(r *scoreResult, n int) []int {
	if sh := r.Set.Array.Shape; len(sh) == 5 && sh[2]*sh[3]*sh[4] == n {
		return append([]int(nil), sh[2:]...)
	}
	return []int{n}
}

// safeName keeps ids usable as file names.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, id)
}
