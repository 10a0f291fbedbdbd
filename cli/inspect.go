package cli

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/latentad/latentad/data/nifti"
)

func init() {
	register(&ucli.Command{
		Name:      "inspect",
		Usage:     "show the header and value statistics of NIfTI files",
		UsageText: "latentad inspect [--json] FILE.nii[.gz]…",
		Description: "For each file: NIfTI version, byte order, compression, dimensions, voxel size, datatype,\n" +
			"scl_slope/scl_inter, qform/sform codes and the affine nibabel would use; then min, max,\n" +
			"mean, std, NaN count and the 1st/50th/99th percentiles of the (scaled) values.\n" +
			"A file that cannot be read is reported and the others still are; the exit code is then 1.",
		Flags:  []ucli.Flag{boolFlag("json", "print a JSON array, one object per file")},
		Action: runInspect,
	})
}

type inspectStats struct {
	Min      jfloat `json:"min"`
	Max      jfloat `json:"max"`
	Mean     jfloat `json:"mean"`
	Std      jfloat `json:"std"`
	NaNCount int    `json:"nan_count"`
	InfCount int    `json:"inf_count"`
	P1       jfloat `json:"p1"`
	P50      jfloat `json:"p50"`
	P99      jfloat `json:"p99"`
}

type inspectOut struct {
	File         string        `json:"file"`
	Error        string        `json:"error,omitempty"`
	Version      int           `json:"nifti_version,omitempty"`
	Magic        string        `json:"magic,omitempty"`
	ByteOrder    string        `json:"byte_order,omitempty"`
	Gzip         bool          `json:"gzip"`
	Dims         []int         `json:"dims,omitempty"`
	VoxelSize    []jfloat      `json:"voxel_size,omitempty"`
	Units        string        `json:"units,omitempty"`
	Datatype     string        `json:"datatype,omitempty"`
	BitPix       int           `json:"bitpix,omitempty"`
	VoxOffset    int64         `json:"vox_offset,omitempty"`
	SclSlope     jfloat        `json:"scl_slope"`
	SclInter     jfloat        `json:"scl_inter"`
	Scaled       bool          `json:"scaled"`
	QformCode    int           `json:"qform_code"`
	SformCode    int           `json:"sform_code"`
	AffineSource string        `json:"affine_source,omitempty"`
	Affine       *[4][4]jfloat `json:"affine,omitempty"`
	Descrip      string        `json:"descrip,omitempty"`
	Stats        *inspectStats `json:"stats,omitempty"`
}

var xformNames = map[int]string{0: "unknown", 1: "scanner", 2: "aligned", 3: "talairach", 4: "mni", 5: "template"}

func runInspect(c *ucli.Context) error {
	files := c.Args().Slice()
	if len(files) == 0 {
		return usageError("inspect needs at least one NIfTI file: latentad inspect FILE.nii.gz…")
	}
	var outs []inspectOut
	failed := 0
	for _, f := range files {
		o := inspectFile(f)
		if o.Error != "" {
			failed++
			fmt.Fprintf(stderr, "latentad inspect: %s\n", o.Error)
		}
		outs = append(outs, o)
	}
	if c.Bool("json") {
		// One object per line keeps the array readable and easy to grep.
		fmt.Fprintln(stdout, "[")
		for i, o := range outs {
			var v any = o
			if o.Error != "" {
				v = struct {
					File  string `json:"file"`
					Error string `json:"error"`
				}{o.File, o.Error}
			}
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			sep := ","
			if i == len(outs)-1 {
				sep = ""
			}
			fmt.Fprintf(stdout, "  %s%s\n", b, sep)
		}
		fmt.Fprintln(stdout, "]")
	} else {
		for i, o := range outs {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printInspect(stdout, o)
		}
	}
	if failed > 0 {
		return ucli.Exit(fmt.Sprintf("%d of %d files could not be read", failed, len(files)), 1)
	}
	return nil
}

// inspectFile reads one file; a failure is recorded in Error, naming the file.
func inspectFile(path string) inspectOut {
	o := inspectOut{File: path}
	im, err := nifti.ReadFile(path)
	if err != nil {
		msg := err.Error()
		if !strings.Contains(msg, path) {
			msg = path + ": " + msg
		}
		o.Error = msg
		return o
	}
	if f, err := os.Open(path); err == nil {
		var m [2]byte
		if _, err := io.ReadFull(f, m[:]); err == nil {
			o.Gzip = m == [2]byte{0x1f, 0x8b}
		}
		f.Close()
	}
	h := &im.Header
	o.Version, o.Magic, o.Dims = h.Version, h.Magic, h.Dims
	for _, v := range h.VoxelSize() {
		o.VoxelSize = append(o.VoxelSize, jfloat(v))
	}
	o.ByteOrder = "little-endian"
	if h.ByteOrder == binary.BigEndian {
		o.ByteOrder = "big-endian"
	}
	o.Units = map[int]string{1: "m", 2: "mm", 3: "µm"}[h.XYZTUnits&7]
	o.Datatype, o.BitPix, o.VoxOffset = h.Datatype.String(), h.BitPix, h.VoxOffset
	o.SclSlope, o.SclInter = jfloat(h.SclSlope), jfloat(h.SclInter)
	_, _, o.Scaled = h.Scaling()
	o.QformCode, o.SformCode = h.QformCode, h.SformCode
	switch {
	case h.SformCode != 0:
		o.AffineSource = "sform"
	case h.QformCode != 0:
		o.AffineSource = "qform"
	default:
		o.AffineSource = "pixdim (no sform or qform code)"
	}
	var aff [4][4]jfloat
	for i, row := range im.Affine {
		for j, v := range row {
			aff[i][j] = jfloat(v)
		}
	}
	o.Affine = &aff
	o.Descrip = h.Descrip
	o.Stats = valueStats(im.Data)
	return o
}

// valueStats computes numpy's nanmin, nanmax, nanmean, nanstd (ddof 0) and
// nanpercentile (linear interpolation) over the values.
func valueStats(v []float64) *inspectStats {
	st := valueStats64(v)
	return &inspectStats{
		Min: jfloat(st.min), Max: jfloat(st.max), Mean: jfloat(st.mean), Std: jfloat(st.std),
		NaNCount: st.nan, InfCount: st.inf, P1: jfloat(st.p1), P50: jfloat(st.p50), P99: jfloat(st.p99),
	}
}

type stats64 struct {
	min, max, mean, std, p1, p50, p99 float64
	nan, inf                          int
}

func valueStats64(v []float64) stats64 {
	var s stats64
	vals := make([]float64, 0, len(v))
	for _, x := range v {
		switch {
		case math.IsNaN(x):
			s.nan++
			continue
		case math.IsInf(x, 0):
			s.inf++
		}
		vals = append(vals, x)
	}
	if len(vals) == 0 {
		nan := math.NaN()
		s.min, s.max, s.mean, s.std, s.p1, s.p50, s.p99 = nan, nan, nan, nan, nan, nan, nan
		return s
	}
	sort.Float64s(vals)
	s.min, s.max = vals[0], vals[len(vals)-1]
	// Two passes for a std that does not cancel catastrophically.
	var sum float64
	for _, x := range vals {
		sum += x
	}
	s.mean = sum / float64(len(vals))
	var ss float64
	for _, x := range vals {
		ss += (x - s.mean) * (x - s.mean)
	}
	s.std = math.Sqrt(ss / float64(len(vals)))
	pct := func(q float64) float64 {
		pos := q / 100 * float64(len(vals)-1)
		lo := int(math.Floor(pos))
		if lo >= len(vals)-1 {
			return vals[len(vals)-1]
		}
		f := pos - float64(lo)
		return vals[lo] + f*(vals[lo+1]-vals[lo])
	}
	s.p1, s.p50, s.p99 = pct(1), pct(50), pct(99)
	return s
}

// jfloat is a float64 that encodes NaN and ±Inf (a NaN scl_slope, an all-NaN volume) as
// JSON null instead of failing.
type jfloat float64

func (f jfloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

func printInspect(w io.Writer, o inspectOut) {
	if o.Error != "" {
		fmt.Fprintf(w, "%s\n  error: %s\n", o.File, o.Error)
		return
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	comp := "uncompressed"
	if o.Gzip {
		comp = "gzip"
	}
	join := func(xs []jfloat) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = fmt.Sprintf("%.6g", x)
		}
		return strings.Join(s, " × ")
	}
	dims := make([]string, len(o.Dims))
	for i, d := range o.Dims {
		dims[i] = fmt.Sprint(d)
	}
	fmt.Fprintf(tw, "  format\tNIfTI-%d (%s), %s, %s, vox_offset %d\n", o.Version, o.Magic, o.ByteOrder, comp, o.VoxOffset)
	fmt.Fprintf(tw, "  dims\t%s\n", strings.Join(dims, " × "))
	unit := o.Units
	if unit == "" {
		unit = "unknown unit"
	}
	fmt.Fprintf(tw, "  voxel size\t%s (%s)\n", join(o.VoxelSize), unit)
	fmt.Fprintf(tw, "  datatype\t%s (bitpix %d)\n", o.Datatype, o.BitPix)
	switch {
	case o.Scaled && o.SclSlope == 1 && o.SclInter == 0:
		fmt.Fprintf(tw, "  scaling\tscl_slope 1, scl_inter 0 (identity)\n")
	case o.Scaled:
		fmt.Fprintf(tw, "  scaling\tscl_slope %g, scl_inter %g (applied)\n", o.SclSlope, o.SclInter)
	default:
		fmt.Fprintf(tw, "  scaling\tnone (scl_slope %g)\n", o.SclSlope)
	}
	fmt.Fprintf(tw, "  xform codes\tqform %d (%s), sform %d (%s)\n", o.QformCode, xformNames[o.QformCode], o.SformCode, xformNames[o.SformCode])
	for i, row := range o.Affine {
		label := ""
		if i == 0 {
			label = "affine (" + o.AffineSource + ")"
		}
		fmt.Fprintf(tw, "  %s\t[%10.4f %10.4f %10.4f %10.4f]\n", label, row[0], row[1], row[2], row[3])
	}
	if o.Descrip != "" {
		fmt.Fprintf(tw, "  descrip\t%q\n", o.Descrip)
	}
	s := o.Stats
	fmt.Fprintf(tw, "  values\tmin %.6g  max %.6g  mean %.6g  std %.6g\n", s.Min, s.Max, s.Mean, s.Std)
	fmt.Fprintf(tw, "  \tNaN %d  ±Inf %d  p1 %.6g  p50 %.6g  p99 %.6g\n", s.NaNCount, s.InfCount, s.P1, s.P50, s.P99)
	tw.Flush()
	fmt.Fprintf(w, "%s\n%s", o.File, b.String())
}
