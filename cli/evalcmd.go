package cli

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/checkpoint"
	"github.com/latentad/latentad/compute"
	"github.com/latentad/latentad/data"
	"github.com/latentad/latentad/ddpm"
	"github.com/latentad/latentad/eval"
	"github.com/latentad/latentad/flow"
	"github.com/latentad/latentad/internal/atomicfile"
	"github.com/latentad/latentad/internal/progress"
)

func init() {
	register(&ucli.Command{
		Name:  "eval",
		Usage: "compare the AE baseline, DDPM and flow matching: tune on val, evaluate once on test",
		UsageText: "latentad eval --ae_model_path ae.safetensors --ddpm_model runs/ddpm/best_model.safetensors --fm_model runs/fm/best_model.safetensors\n" +
			"     --normal_root normals/ --tts_root tts/ --metadata_csv Combined_Labels.csv --val_csv val.csv --test_csv test.csv --out_dir eval/\n" +
			"   latentad eval --fm_model fm.safetensors --val_latents val_latents/ --test_latents test_latents/ --out_dir eval/",
		Description: "The seed's comprehensive evaluation (SPEC §5). Each latent model is scored on the validation\n" +
			"split at every point of its grid — DDPM: --ddpm_t_small × --k_values (ddpm_small_t; with\n" +
			"--ddpm_full_range also the full t range), flow matching: --k_values × --fm_t_ranges with the\n" +
			"mse_multi_t score (--fm_methods adds velocity_inconsistency) — and the setting with the best\n" +
			"val ROC-AUC among those whose anomaly mean exceeds the normal mean (else the best ROC-AUC) is\n" +
			"scored once on the test split, with bootstrap CIs. The autoencoder baseline (ae_recon, per-volume\n" +
			"reconstruction MSE) needs volumes. Inputs are volume roots (normals label 0 and --tts_root label 1\n" +
			"unless --metadata_csv says otherwise; the splits come from --val_csv and --test_csv; each split\n" +
			"is encoded once with --ae_model_path and cached in --out_dir) or latents folders from\n" +
			"`latentad extract` with labels in index.csv.\n" +
			"Writes comparison.md/.csv/.json, scores_<method>.csv (test), tuning_<method>.csv (val grid),\n" +
			"roc_test.png and hist_<method>.png to --out_dir, and prints the table.",
		Flags: append(volumeFlags(),
			stringFlag("ddpm_model", "", "DDPM checkpoint (train-ddpm output or the seed's .pth)"),
			stringFlag("fm_model", "", "flow-matching checkpoint (train-fm output or the seed's .pth)"),
			stringFlag("normal_root", "", "cohort folder of normal volumes (label 0 unless --metadata_csv says otherwise)"),
			stringFlag("tts_root", "", "cohort folder of anomalous (TTS) volumes (label 1 unless --metadata_csv says otherwise)"),
			stringFlag("val_csv", "", "split CSV of the validation patients (with volume roots)"),
			stringFlag("test_csv", "", "split CSV of the test patients (with volume roots)"),
			stringFlag("val_latents", "", "instead of volumes: validation latents folder (latents.npy + index.csv with labels)"),
			stringFlag("test_latents", "", "instead of volumes: test latents folder"),
			stringFlag("out_dir", "", "folder for the tables, scores and plots (required)"),
			intFlag("seed", 42, "seed of the score draws and of the bootstrap"),
			intFlag("batch_size", 4, "latents per forward pass"),
			intFlag("bootstrap", 2000, "bootstrap resamples for the test CIs (0: no CIs)"),
			stringFlag("k_values", "5,10,20", "grid of K (draws per sample), for DDPM and flow matching"),
			stringFlag("ddpm_t_small", "10,20,50,100", "DDPM grid of t_small: t ~ randint[0, min(t_small, T))"),
			boolFlag("ddpm_full_range", "also try the full DDPM t range (the ddpm score) in the grid"),
			stringFlag("fm_t_ranges", "full,small", "flow-matching grid of t ranges: full = [0,1], small = [0,0.3], or LO:HI"),
			stringFlag("fm_methods", "mse_multi_t", "flow-matching scores to tune over: mse_multi_t, velocity_inconsistency"),
			intFlag("timesteps", 1000, "DDPM steps T, for a .pth that does not carry its noise_schedule"),
			stringFlag("schedule_type", "cosine", "DDPM schedule for such a .pth: cosine or linear"),
			deviceFlag(),
		),
		Action: runEval,
	})
}

// evalMethodKeys name the table rows in files (scores_<key>.csv) and their order.
const (
	evalAE   = "ae_recon"
	evalDDPM = "ddpm"
	evalFM   = "flow_matching"
)

var evalTitles = map[string]string{evalAE: "AE reconstruction", evalDDPM: "DDPM", evalFM: "Flow matching"}

// evalSplit is one labelled split: the rows of a latent set (or of a cohort) that carry a label.
type evalSplit struct {
	name   string // "val" or "test"
	source string // what it was read from, for messages
	set    *latentSet
	rows   []int // indices into set (labelled rows only)
	ids    []string
	labels []int
}

// evalGridPoint is one setting of a latent method.
type evalGridPoint struct {
	params string   // e.g. "mse_multi_t K=10 t_range=small [0,0.3]"
	short  string   // the same for the ROC legend, e.g. "K=10, small"
	cols   []string // the method's parameter columns in tuning_<method>.csv
	score  string   // mse_multi_t, velocity_inconsistency, ddpm or ddpm_small_t
	fo     flow.Options
	do     ddpm.Options
}

// evalMethod is a model with its tuning grid.
type evalMethod struct {
	key, flag, path string
	model           *scoreModel
	cols            []string
	grid            []evalGridPoint
}

// evalResult is what one method contributes to the outputs.
type evalResult struct {
	key    string
	legend string // the ROC legend entry
	row    eval.Row
	test   []float64 // test scores, row for row with the test split
	tuning [][]string
}

func runEval(c *ucli.Context) error {
	if c.NArg() > 0 {
		return usageError("eval: unexpected argument %q; every input is a flag (see `latentad eval --help`)", c.Args().First())
	}
	outDir := c.String("out_dir")
	if outDir == "" {
		return usageError("--out_dir is required: the folder for the comparison table, scores and plots")
	}
	aePath, ddpmPath, fmPath := c.String("ae_model_path"), c.String("ddpm_model"), c.String("fm_model")
	if ddpmPath == "" && fmPath == "" && aePath == "" {
		return usageError("give at least one model: --fm_model, --ddpm_model and/or --ae_model_path (the AE baseline)")
	}
	batch, nBoot := c.Int("batch_size"), c.Int("bootstrap")
	if batch < 1 {
		return usageError("--batch_size must be at least 1, got %d", batch)
	}
	if nBoot < 0 {
		return usageError("--bootstrap %d: give 0 (no CIs) or a number of resamples such as 2000", nBoot)
	}
	seed := uint64(c.Int("seed"))
	grids, err := evalGrids(c, seed)
	if err != nil {
		return err
	}

	volumes := c.String("normal_root") != "" || c.String("tts_root") != ""
	latents := c.String("val_latents") != "" || c.String("test_latents") != ""
	switch {
	case volumes && latents:
		return usageError("give volume roots (--normal_root/--tts_root) or latents folders (--val_latents/--test_latents), not both")
	case !volumes && !latents:
		return usageError("no data: give volume roots (--normal_root, --tts_root with --val_csv, --test_csv) or latents folders (--val_latents, --test_latents)")
	case latents && (c.String("val_latents") == "" || c.String("test_latents") == ""):
		return usageError("give both --val_latents (to tune on) and --test_latents (to evaluate on)")
	case latents && ddpmPath == "" && fmPath == "":
		return usageError("with latents only --ddpm_model and --fm_model can be evaluated (the AE baseline --ae_model_path scores volumes): give one of them")
	case volumes && (c.String("val_csv") == "" || c.String("test_csv") == ""):
		return usageError("with volume roots give --val_csv (the patients to tune on) and --test_csv (to evaluate on), so that the two splits stay apart")
	case volumes && aePath == "":
		return usageError("--ae_model_path is required with volume roots: it encodes the volumes and is the AE baseline")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("--out_dir %s: cannot create the folder: %w", outDir, err)
	}

	dev, err := openDevice(c.String("device"))
	if err != nil {
		return err
	}
	var methods []*evalMethod
	for _, m := range []*evalMethod{
		{key: evalDDPM, flag: "ddpm_model", path: ddpmPath, cols: []string{"score", "t_small", "k"}, grid: grids[evalDDPM]},
		{key: evalFM, flag: "fm_model", path: fmPath, cols: []string{"score", "k", "t_range", "t_min", "t_max"}, grid: grids[evalFM]},
	} {
		if m.path == "" {
			continue
		}
		if m.model, err = evalLoadModel(c, dev, m.flag, m.path, m.grid[0].score); err != nil {
			return err
		}
		defer m.model.release()
		methods = append(methods, m)
	}

	var val, test *evalSplit
	if len(methods) > 0 {
		if val, test, err = evalLatentSplits(c, outDir); err != nil {
			return err
		}
		for _, m := range methods {
			for _, s := range []*evalSplit{val, test} {
				if ch, want := s.set.Array.Shape[1], m.model.vel.Config().InChannels; ch != want {
					return fmt.Errorf("%s split (%s): latents have %d channels, but --%s %s expects %d (was it trained on another autoencoder's latents?)",
						s.name, s.source, ch, m.flag, m.path, want)
				}
			}
		}
	}

	var results []evalResult
	if volumes {
		r, split, err := evalAEBaseline(c, dev, aePath, nBoot, seed)
		if err != nil {
			return err
		}
		if test != nil && (!slices.Equal(test.ids, split.ids) || !slices.Equal(test.labels, split.labels)) {
			return fmt.Errorf("test split: the encoded latents (%s) and the volumes the AE baseline read list different patients or labels; delete %s and run again",
				test.set.Source, filepath.Join(outDir, "latents_cache"))
		}
		results = append(results, r)
		if test == nil {
			test = split
		}
	} else if aePath != "" {
		fmt.Fprintf(stderr, "note: the AE baseline (ae_recon) scores volumes; with latents folders it is left out\n")
	}
	if len(methods) > 0 {
		total := 0
		for _, m := range methods {
			total += len(m.grid)*len(val.rows) + len(test.rows)
		}
		bar := progress.New(stderr, "eval grid", total)
		for _, m := range methods {
			r, err := evalTune(dev, m, val, test, batch, nBoot, seed, bar)
			if err != nil {
				bar.Done()
				return err
			}
			results = append(results, r)
		}
		bar.Done()
	}
	return evalWrite(outDir, results, test)
}

// evalGrids builds the DDPM and flow-matching grids from the flags.
func evalGrids(c *ucli.Context, seed uint64) (map[string][]evalGridPoint, error) {
	ks, err := evalParseInts("k_values", c.String("k_values"), 1)
	if err != nil {
		return nil, err
	}
	ts, err := evalParseInts("ddpm_t_small", c.String("ddpm_t_small"), 1)
	if err != nil {
		return nil, err
	}
	ranges, err := evalParseTRanges(c.String("fm_t_ranges"))
	if err != nil {
		return nil, err
	}
	var fmMethods []string
	for _, f := range evalSplitList(c.String("fm_methods")) {
		if f != "mse_multi_t" && f != "velocity_inconsistency" {
			return nil, usageError("--fm_methods %q: unknown score %q; choose mse_multi_t and/or velocity_inconsistency", c.String("fm_methods"), f)
		}
		if slices.Contains(fmMethods, f) {
			return nil, usageError("--fm_methods %q lists %s twice", c.String("fm_methods"), f)
		}
		if f == "velocity_inconsistency" && slices.Min(ks) < 2 {
			return nil, usageError("--fm_methods velocity_inconsistency is a variance over the K draws: every --k_values entry must be at least 2, got %v", ks)
		}
		fmMethods = append(fmMethods, f)
	}
	if len(fmMethods) == 0 {
		return nil, usageError("--fm_methods is empty; give mse_multi_t (the seed's) and/or velocity_inconsistency")
	}
	g := map[string][]evalGridPoint{}
	var tSmall []int
	tSmall = append(tSmall, ts...)
	if c.Bool("ddpm_full_range") {
		tSmall = append(tSmall, 0) // 0: the full range, the ddpm score
	}
	for _, t := range tSmall {
		for _, k := range ks {
			p := evalGridPoint{score: "ddpm_small_t", do: ddpm.Options{Samples: k, TMax: t, Seed: seed}}
			p.params = fmt.Sprintf("ddpm_small_t t_small=%d K=%d", t, k)
			p.cols = []string{"ddpm_small_t", strconv.Itoa(t), strconv.Itoa(k)}
			p.short = fmt.Sprintf("t_small=%d, K=%d", t, k)
			if t == 0 {
				p.score = "ddpm"
				p.params = fmt.Sprintf("ddpm t=full K=%d", k)
				p.cols = []string{"ddpm", "full", strconv.Itoa(k)}
				p.short = fmt.Sprintf("full t, K=%d", k)
			}
			g[evalDDPM] = append(g[evalDDPM], p)
		}
	}
	for _, f := range fmMethods {
		for _, k := range ks {
			for _, r := range ranges {
				lo, hi := evalNum(r.lo), evalNum(r.hi)
				fo := flow.Options{Samples: k, TMin: r.lo, TMax: r.hi, Seed: seed}
				if err := fo.Validate(); err != nil {
					return nil, usageError("flow-matching grid point K=%d t_range=[%s,%s]: %v", k, lo, hi, err)
				}
				name := fmt.Sprintf("[%s,%s]", lo, hi)
				short := fmt.Sprintf("K=%d, t %s", k, name)
				if r.name != "" {
					name = r.name + " " + name
					short = fmt.Sprintf("K=%d, %s t", k, r.name)
				}
				if f != "mse_multi_t" {
					short = f + ", " + short
				}
				g[evalFM] = append(g[evalFM], evalGridPoint{
					params: fmt.Sprintf("%s K=%d t_range=%s", f, k, name), short: short,
					cols:  []string{f, strconv.Itoa(k), r.name, lo, hi},
					score: f, fo: fo,
				})
			}
		}
	}
	return g, nil
}

// evalNum writes a number in the shortest form that reads back the same.
func evalNum(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// evalSplitList splits a comma-separated flag value, trimming spaces and dropping empty items.
func evalSplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// evalParseInts reads a grid flag like "5,10,20": distinct integers of at least lo.
func evalParseInts(flag, s string, lo int) ([]int, error) {
	var out []int
	for _, f := range evalSplitList(s) {
		v, err := strconv.Atoi(f)
		if err != nil || v < lo {
			return nil, usageError("--%s %q: %q is not an integer ≥ %d; give a comma-separated list such as 5,10,20", flag, s, f, lo)
		}
		if slices.Contains(out, v) {
			return nil, usageError("--%s %q lists %d twice", flag, s, v)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, usageError("--%s is empty; give a comma-separated list such as 5,10,20", flag)
	}
	return out, nil
}

type evalTRange struct {
	name   string // "full", "small" or "" for an explicit LO:HI
	lo, hi float64
}

// evalParseTRanges reads --fm_t_ranges: full, small or LO:HI items.
func evalParseTRanges(s string) ([]evalTRange, error) {
	var out []evalTRange
	for _, f := range evalSplitList(s) {
		var r evalTRange
		switch f {
		case "full":
			r = evalTRange{"full", 0, 1}
		case "small":
			r = evalTRange{"small", 0, 0.3}
		default:
			a, b, ok := strings.Cut(f, ":")
			lo, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
			hi, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
			if !ok || err1 != nil || err2 != nil || !(0 <= lo && lo < hi && hi <= 1) {
				return nil, usageError("--fm_t_ranges %q: %q is not full, small or LO:HI with 0 ≤ LO < HI ≤ 1 (e.g. 0:0.5)", s, f)
			}
			r = evalTRange{"", lo, hi}
		}
		for _, o := range out {
			if o.lo == r.lo && o.hi == r.hi {
				return nil, usageError("--fm_t_ranges %q lists the range [%g,%g] twice", s, r.lo, r.hi)
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, usageError("--fm_t_ranges is empty; give full, small and/or LO:HI ranges")
	}
	return out, nil
}

// evalLoadModel loads a latent model for score, naming the flag when the checkpoint is of
// the wrong kind.
func evalLoadModel(c *ucli.Context, dev compute.Device, flag, path, score string) (*scoreModel, error) {
	want := methodKinds[score]
	ck, err := checkpoint.Load(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if ck.Kind != "" && ck.Kind != want {
		return nil, usageError("--%s %s is %s checkpoint; give %s one there", flag, path, kindName(ck.Kind), kindName(want))
	}
	m, err := loadScoreModel(c, dev, path, score)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return m, nil
}

// evalArticle puts "a" or "an" before a kind name.
// evalLatentSplits reads or encodes the val and test latents and keeps their labelled rows.
func evalLatentSplits(c *ucli.Context, outDir string) (val, test *evalSplit, err error) {
	for _, name := range []string{"val", "test"} {
		var set *latentSet
		var source string
		if p := c.String(name + "_latents"); p != "" {
			source = p
			if set, err = readLatents(p); err != nil {
				return nil, nil, fmt.Errorf("--%s_latents: %w", name, err)
			}
		} else {
			source = evalVolumeSource(c, name)
			if set, err = evalEncodeSplit(c, name, outDir); err != nil {
				return nil, nil, err
			}
		}
		s, err := newEvalSplit(name, source, set)
		if err != nil {
			return nil, nil, err
		}
		if name == "val" {
			val = s
		} else {
			test = s
		}
	}
	if a, b := val.set.Array.Shape[1:], test.set.Array.Shape[1:]; !slices.Equal(a, b) {
		fmt.Fprintf(stderr, "note: val latents are %v but test latents are %v per sample\n", a, b)
	}
	evalWarnOverlap(val, test)
	return val, test, nil
}

func evalVolumeSource(c *ucli.Context, split string) string {
	var parts []string
	for _, f := range []string{"normal_root", "tts_root"} {
		if v := c.String(f); v != "" {
			parts = append(parts, "--"+f+" "+v)
		}
	}
	return strings.Join(parts, ", ") + " with --" + split + "_csv " + c.String(split+"_csv")
}

// evalRoots are the volume roots with their default labels; one folder given as both is
// scanned once, its labels then coming from --metadata_csv.
func evalRoots(c *ucli.Context) []evalRoot {
	nr, tr := c.String("normal_root"), c.String("tts_root")
	if nr != "" && tr != "" && absOr(nr) == absOr(tr) {
		return []evalRoot{{"normal_root", nr, -1}}
	}
	var out []evalRoot
	if nr != "" {
		out = append(out, evalRoot{"normal_root", nr, 0})
	}
	if tr != "" {
		out = append(out, evalRoot{"tts_root", tr, 1})
	}
	return out
}

// evalRoot is a volume root and the label of its patients without metadata.
type evalRoot struct {
	flag, root string
	label      int
}

// evalScan lists the patients of one split under every root. A root with none of them is
// skipped with a note (the class check then says what is missing); no patient at all is an
// error that carries the reasons.
func evalScan(c *ucli.Context, split string) ([]evalRoot, []*data.Cohort, error) {
	var roots []evalRoot
	var cohorts []*data.Cohort
	var empty []string
	for _, r := range evalRoots(c) {
		co, err := data.ScanCohort(data.CohortOptions{Root: r.root, MetadataCSV: c.String("metadata_csv"), SplitCSV: c.String(split + "_csv"), DefaultLabel: r.label})
		if err != nil && co != nil && len(co.Patients) == 0 {
			empty = append(empty, fmt.Sprintf("--%s: %v", r.flag, err))
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s split: --%s %s: %w", split, r.flag, r.root, err)
		}
		roots, cohorts = append(roots, r), append(cohorts, co)
	}
	if len(roots) == 0 {
		return nil, nil, fmt.Errorf("%s split: nothing to evaluate: %s", split, strings.Join(empty, "; "))
	}
	for _, e := range empty {
		fmt.Fprintf(stderr, "note: %s split: %s\n", split, e)
	}
	return roots, cohorts, nil
}

// evalEncodeSplit encodes the patients of one split from every root (cached in outDir).
func evalEncodeSplit(c *ucli.Context, split, outDir string) (*latentSet, error) {
	splitCSV := c.String(split + "_csv")
	roots, cohorts, err := evalScan(c, split)
	if err != nil {
		return nil, err
	}
	var all *latentSet
	for k, r := range roots {
		co := cohorts[k]
		s, err := cohortLatents(c, r.root, splitCSV, r.label, outDir)
		if err != nil {
			return nil, fmt.Errorf("%s split (--%s %s with --%s_csv %s): %w", split, r.flag, r.root, split, splitCSV, err)
		}
		// The cache is keyed by the files, not by the metadata's content: take the labels
		// from this scan, so an edited metadata CSV counts.
		if len(s.Index) != len(co.Patients) {
			return nil, fmt.Errorf("%s split: %s holds %d latents for %d patients of %s; delete it and run again", split, s.Source, len(s.Index), len(co.Patients), r.root)
		}
		s.Index = slices.Clone(s.Index)
		for i, p := range co.Patients {
			if s.Index[i].ID != p.ID {
				return nil, fmt.Errorf("%s split: %s row %d is %q, but the cohort's patient is %q; delete it and run again", split, s.Source, i, s.Index[i].ID, p.ID)
			}
			s.Index[i].Label = p.Label
		}
		if all == nil {
			all = s
			continue
		}
		if !slices.Equal(all.Array.Shape[1:], s.Array.Shape[1:]) {
			return nil, fmt.Errorf("%s split: latents of %s are %v but those of %s are %v per sample", split, all.Source, all.Array.Shape[1:], s.Source, s.Array.Shape[1:])
		}
		arr := compute.NewArray(append([]int{all.Array.Shape[0] + s.Array.Shape[0]}, s.Array.Shape[1:]...)...)
		copy(arr.Data, all.Array.Data)
		copy(arr.Data[len(all.Array.Data):], s.Array.Data)
		all = &latentSet{Array: arr, Index: append(append([]data.IndexRow(nil), all.Index...), s.Index...), Source: all.Source + " + " + s.Source, Prep: s.Prep}
	}
	return all, nil
}

// newEvalSplit keeps the labelled rows of set and checks that both classes are there.
func newEvalSplit(name, source string, set *latentSet) (*evalSplit, error) {
	s := &evalSplit{name: name, source: source, set: set}
	n := set.Array.Shape[0]
	if len(set.Index) != n {
		return nil, fmt.Errorf("%s split (%s): %d latents but %d index rows; eval needs a label for every latent (index.csv from `latentad extract`)", name, source, n, len(set.Index))
	}
	var unlabelled int
	for i, r := range set.Index {
		if r.Label != 0 && r.Label != 1 {
			unlabelled++
			continue
		}
		s.rows = append(s.rows, i)
		s.ids = append(s.ids, r.ID)
		s.labels = append(s.labels, r.Label)
	}
	if err := evalCheckClasses(s, unlabelled); err != nil {
		return nil, err
	}
	if unlabelled > 0 {
		fmt.Fprintf(stderr, "note: %s split (%s): %d of %d samples have no label and are left out\n", name, source, unlabelled, n)
	}
	return s, nil
}

func evalCheckClasses(s *evalSplit, unlabelled int) error {
	var pos int
	for _, l := range s.labels {
		pos += l
	}
	neg := len(s.labels) - pos
	if pos > 0 && neg > 0 {
		return nil
	}
	extra := ""
	if unlabelled > 0 {
		extra = fmt.Sprintf(" (%d more have no label)", unlabelled)
	}
	return fmt.Errorf("%s split (%s): %d normal and %d anomalous samples%s; ROC-AUC needs both classes — check the labels (the label column of index.csv, the case column of --metadata_csv, or the split CSV)",
		s.name, s.source, neg, pos, extra)
}

// evalWarnOverlap warns when a patient is in both splits: tuning on it biases the test.
func evalWarnOverlap(val, test *evalSplit) {
	seen := map[string]bool{}
	for _, id := range val.ids {
		seen[id] = true
	}
	var both []string
	for _, id := range test.ids {
		if seen[id] {
			both = append(both, id)
		}
	}
	if len(both) > 0 {
		if len(both) > 5 {
			both = append(both[:5], "…")
		}
		fmt.Fprintf(stderr, "warning: %d ids are in both the val and the test split (%s): the test metrics are then optimistic\n", len(both), strings.Join(both, ", "))
	}
}

// evalTune scores val at every grid point, picks the setting and scores test once with it.
func evalTune(dev compute.Device, m *evalMethod, val, test *evalSplit, batch, nBoot int, seed uint64, bar *progress.Bar) (evalResult, error) {
	title := evalTitles[m.key]
	cands := make([]eval.Candidate, len(m.grid))
	for i, p := range m.grid {
		scores, err := evalScoreLatents(dev, m, p, val, batch, bar)
		if err != nil {
			return evalResult{}, err
		}
		sum, err := eval.Evaluate(scores, val.labels, eval.Options{})
		if err != nil {
			return evalResult{}, fmt.Errorf("%s %s on the val split: %w", title, p.params, err)
		}
		cands[i] = eval.Candidate{Params: p.params, Val: sum}
		bar.Add(0, fmt.Sprintf("%s %s: val ROC-AUC %.3f", m.key, p.params, sum.ROCAUC))
	}
	best := eval.Select(cands)
	if best < 0 {
		return evalResult{}, fmt.Errorf("%s: empty grid", title)
	}
	if v := cands[best].Val; !(v.AnomalyMean > v.NormalMean) {
		fmt.Fprintf(stderr, "note: no %s setting scored the val anomalies higher on average than the normals; chose the best val ROC-AUC (%.3f)\n", title, v.ROCAUC)
	}
	p := m.grid[best]
	scores, err := evalScoreLatents(dev, m, p, test, batch, bar)
	if err != nil {
		return evalResult{}, err
	}
	sum, err := eval.Evaluate(scores, test.labels, eval.Options{Bootstrap: nBoot, Seed: seed, Level: 0.95})
	if err != nil {
		return evalResult{}, fmt.Errorf("%s %s on the test split: %w", title, p.params, err)
	}
	val0 := cands[best].Val
	r := evalResult{key: m.key, legend: title + " (" + p.short + ")", row: eval.Row{Method: title, Params: p.params, Val: &val0, Test: sum}, test: scores}
	head := append([]string{"params"}, m.cols...)
	head = append(head, "roc_auc", "pr_auc", "mw_statistic", "mw_p_value", "anomaly_mean", "normal_mean", "n_anomaly", "n_normal", "anomaly_mean_gt_normal", "chosen")
	r.tuning = append(r.tuning, head)
	for i, cd := range cands {
		v := cd.Val
		rec := append([]string{cd.Params}, m.grid[i].cols...)
		rec = append(rec, evalNum(v.ROCAUC), evalNum(v.PRAUC), evalNum(v.MWStatistic), evalNum(v.MWPValue), evalNum(v.AnomalyMean), evalNum(v.NormalMean),
			strconv.Itoa(v.NAnomaly), strconv.Itoa(v.NNormal), strconv.FormatBool(v.AnomalyMean > v.NormalMean), strconv.FormatBool(i == best))
		r.tuning = append(r.tuning, rec)
	}
	return r, nil
}

func evalScoreLatents(dev compute.Device, m *evalMethod, p evalGridPoint, s *evalSplit, batch int, bar *progress.Bar) ([]float64, error) {
	score, release := latentScorer(dev, m.model, p.score, p.fo, p.do)
	defer release()
	scores, _, err := scoreLatents(dev, s.set.Array, s.rows, batch, score, false, bar)
	if err != nil {
		return nil, fmt.Errorf("%s %s on the %s split (%s): %w", evalTitles[m.key], p.params, s.name, s.source, err)
	}
	return scores, nil
}

// evalAEBaseline scores the per-volume reconstruction MSE on the val split (for the table)
// and the test split; it returns the test split's patients as an evalSplit for the outputs.
func evalAEBaseline(c *ucli.Context, dev compute.Device, aePath string, nBoot int, seed uint64) (evalResult, *evalSplit, error) {
	prep, err := preprocessFrom(c)
	if err != nil {
		return evalResult{}, nil, err
	}
	ae, err := loadAE(dev, aePath)
	if err != nil {
		return evalResult{}, nil, fmt.Errorf("--ae_model_path: %w", err)
	}
	defer ae.Release()
	splits := map[string]*evalSplit{}
	pats := map[string][]data.Patient{}
	total := 0
	for _, name := range []string{"val", "test"} {
		var idx []data.IndexRow
		_, cohorts, err := evalScan(c, name)
		if err != nil {
			return evalResult{}, nil, err
		}
		for _, co := range cohorts {
			for _, p := range co.Patients {
				pats[name] = append(pats[name], p)
				idx = append(idx, data.IndexRow{ID: p.ID, Label: p.Label, Source: p.ROIPath})
			}
		}
		set := &latentSet{Array: compute.Array{Shape: []int{len(idx)}}, Index: idx, Source: evalVolumeSource(c, name), Prep: prep}
		s, err := newEvalSplit(name, set.Source, set)
		if err != nil {
			return evalResult{}, nil, err
		}
		splits[name] = s
		total += len(s.rows)
	}
	bar := progress.New(stderr, "ae_recon", total)
	defer bar.Done()
	scores := map[string][]float64{}
	var x, sq, per *compute.Tensor
	defer func() {
		for _, t := range []*compute.Tensor{x, sq, per} {
			if t != nil {
				dev.Release(t)
			}
		}
	}()
	for _, name := range []string{"val", "test"} {
		s := splits[name]
		for _, i := range s.rows {
			p := pats[name][i]
			vol, err := p.Load(prep)
			if err != nil {
				return evalResult{}, nil, err
			}
			shape := append([]int{1}, vol.Shape...)
			if err := ae.CheckInput(shape); err != nil {
				return evalResult{}, nil, fmt.Errorf("patient %s (%s): %w", p.ID, p.ROIPath, err)
			}
			if x == nil || !slices.Equal(x.Shape(), shape) {
				for _, t := range []*compute.Tensor{x, sq} {
					if t != nil {
						dev.Release(t)
					}
				}
				x, sq = dev.Alloc(shape...), dev.Alloc(shape...)
			}
			if per == nil {
				per = dev.Alloc(1)
			}
			dev.Upload(x, vol.Data)
			dev.SqDiff(ae.Forward(x), x, sq)
			dev.MeanSample(sq, per)
			scores[name] = append(scores[name], float64(compute.ToHost(per)[0]))
			bar.Add(1, p.ID)
		}
	}
	valSum, err := eval.Evaluate(scores["val"], splits["val"].labels, eval.Options{})
	if err != nil {
		return evalResult{}, nil, fmt.Errorf("AE reconstruction on the val split: %w", err)
	}
	testSum, err := eval.Evaluate(scores["test"], splits["test"].labels, eval.Options{Bootstrap: nBoot, Seed: seed, Level: 0.95})
	if err != nil {
		return evalResult{}, nil, fmt.Errorf("AE reconstruction on the test split: %w", err)
	}
	r := evalResult{key: evalAE, legend: evalTitles[evalAE], test: scores["test"],
		row: eval.Row{Method: evalTitles[evalAE], Params: "per-volume MSE", Val: &valSum, Test: testSum}}
	return r, splits["test"], nil
}

// evalWrite writes the comparison tables, per-method test scores, tuning grids and plots,
// and prints the table.
func evalWrite(outDir string, results []evalResult, test *evalSplit) error {
	var rows []eval.Row
	var curves []eval.NamedROC
	for _, r := range results {
		rows = append(rows, r.row)
		p := filepath.Join(outDir, "scores_"+r.key+".csv")
		if err := eval.WriteScoresCSV(p, eval.ScoreSet{IDs: test.ids, Labels: test.labels, Scores: r.test}); err != nil {
			return err
		}
		if r.tuning != nil {
			p := filepath.Join(outDir, "tuning_"+r.key+".csv")
			if err := atomicfile.Write(p, func(w io.Writer) error {
				cw := csv.NewWriter(w)
				cw.WriteAll(r.tuning)
				return cw.Error()
			}); err != nil {
				return err
			}
		}
		roc, err := eval.ROCCurve(r.test, test.labels, true)
		if err != nil {
			return fmt.Errorf("%s: test ROC curve: %w", r.row.Method, err)
		}
		curves = append(curves, eval.NamedROC{Name: r.legend, Curve: roc})
		p = filepath.Join(outDir, "hist_"+r.key+".png")
		if err := eval.SaveHistogramPNG(p, r.row.Method+" — test scores ("+r.row.Params+")", r.test, test.labels); err != nil {
			return err
		}
	}
	p := filepath.Join(outDir, "roc_test.png")
	if err := eval.SaveROCsPNG(p, "Test split", curves); err != nil {
		return err
	}
	for _, t := range []struct {
		name  string
		write func(io.Writer, []eval.Row) error
	}{{"comparison.md", eval.WriteMarkdown}, {"comparison.csv", eval.WriteTableCSV}, {"comparison.json", eval.WriteTableJSON}} {
		p := filepath.Join(outDir, t.name)
		if err := atomicfile.Write(p, func(w io.Writer) error { return t.write(w, rows) }); err != nil {
			return err
		}
	}
	if err := eval.WriteMarkdown(stdout, rows); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\ncomparison.md/.csv/.json, scores_*.csv, tuning_*.csv, roc_test.png and hist_*.png → %s\n", outDir)
	return nil
}
