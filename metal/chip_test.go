package metal

import (
	"math"
	"testing"
)

func TestChip(t *testing.T) {
	tests := []struct {
		name  string
		cores int
		peak  float64 // GFLOP/s, from Apple's published figures where they exist
	}{
		{"Apple M1", 8, 2617},
		{"Apple M1 Max", 32, 10470},
		{"Apple M2", 10, 3579},
		{"Apple M3 Max", 40, 14131},
		{"Apple M10", 8, 0}, // unknown family
		{"Apple M2 Pro", 0, 0},
		{"msl-emulator", 0, 0},
	}
	for _, tc := range tests {
		c := chipOf(tc.name, tc.cores)
		if math.Abs(c.PeakGFLOPS-tc.peak) > 1 || c.Name != tc.name || c.GPUCores != tc.cores {
			t.Errorf("chipOf(%q, %d) = %+v, want a peak of %v GFLOP/s", tc.name, tc.cores, c, tc.peak)
		}
	}
}

func TestParseGPUCores(t *testing.T) {
	const out = `+-o AGXAcceleratorG13X  <class AGXAcceleratorG13X, id 0x1000003c8, registered>
    {
      "IOClass" = "AGXAcceleratorG13X"
      "gpu-core-count" = 16
      "model" = "Apple M1 Pro"
    }`
	if n := parseGPUCores(out); n != 16 {
		t.Errorf("parseGPUCores = %d, want 16", n)
	}
	if n := parseGPUCores("no registry here"); n != 0 {
		t.Errorf("parseGPUCores of nothing = %d, want 0", n)
	}
}

// TestTimeGPU: the emulator cannot time the GPU, and says so rather than inventing a time.
func TestTimeGPU(t *testing.T) {
	dev := New(newDriver(t))
	x := dev.Alloc(1000)
	if _, ok := dev.TimeGPU(3, func() { dev.Fill(x, 1) }); ok && dev.Driver().Name() == "msl-emulator" {
		t.Error("TimeGPU claims a GPU time on the emulator")
	}
	if got := dev.Chip(); got.Name != dev.Driver().Name() {
		t.Errorf("Chip().Name = %q, want the driver's %q", got.Name, dev.Driver().Name())
	}
}
