package metal

import (
	"regexp"
	"strconv"
	"strings"
)

// Chip describes the GPU for benchmarks: its name as Metal reports it, its GPU core count
// (0 when unknown) and an estimate of its FP32 peak.
type Chip struct {
	Name       string
	GPUCores   int
	PeakGFLOPS float64 // 0 when the family or the core count is unknown
}

// familyClock is the GPU clock (GHz) of each Apple-silicon family. An Apple GPU core has
// 128 FP32 lanes, each doing one fused multiply-add (2 FLOP) per cycle, so the peak is
// cores·256·clock. M1 and M2 match Apple's published TFLOPS (M1 8-core 2.6, M2 10-core 3.6);
// M3 matches the 40-core M3 Max's 14.2; M4 and M5 are estimates, as Apple publishes no
// FP32 figures for them. Longer names first so "Apple M1" does not match "Apple M10".
var familyClock = []struct {
	prefix string
	ghz    float64
}{
	{"Apple M1", 1.278},
	{"Apple M2", 1.398},
	{"Apple M3", 1.38},
	{"Apple M4", 1.47},
	{"Apple M5", 1.58},
}

// chipOf fills in the peak of a named chip with cores GPU cores.
func chipOf(name string, cores int) Chip {
	c := Chip{Name: name, GPUCores: cores}
	if cores <= 0 {
		return c
	}
	for _, f := range familyClock {
		rest, ok := strings.CutPrefix(name, f.prefix)
		if ok && (rest == "" || rest[0] == ' ') {
			c.PeakGFLOPS = float64(cores) * 256 * f.ghz
			break
		}
	}
	return c
}

var gpuCoreCount = regexp.MustCompile(`"gpu-core-count"\s*=\s*(\d+)`)

// parseGPUCores reads the core count from `ioreg -r -c AGXAccelerator` output (0 if absent).
func parseGPUCores(ioreg string) int {
	m := gpuCoreCount.FindStringSubmatch(ioreg)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Chip reports the GPU the device runs on (on the emulator: its name, no peak).
func (d *Device) Chip() Chip { return chipOf(d.drv.Name(), gpuCores()) }

// TimeGPU measures GPU work: it waits for queued work, calls queue reps times (queue must
// only enqueue ops, never read results), submits all of it as one batch, and returns the
// GPU time per repetition from the driver's timestamps. ok is false when the driver cannot
// time the GPU (the emulator) or the work faulted.
func (d *Device) TimeGPU(reps int, queue func()) (seconds float64, ok bool) {
	if err := d.Sync(); err != nil || reps < 1 {
		return 0, false
	}
	for range reps {
		queue()
	}
	if err := d.Sync(); err != nil {
		return 0, false
	}
	s, ok := d.GPUTime()
	return s / float64(reps), ok
}
