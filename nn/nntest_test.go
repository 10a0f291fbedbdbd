package nn_test

import (
	"testing"

	"github.com/latentad/latentad/fallback"
	"github.com/latentad/latentad/nn/nntest"
)

// TestGolden runs the model-level PyTorch parity checks on the CPU backend; the Metal
// backend runs the same nntest.Golden.
func TestGolden(t *testing.T) { nntest.Golden(t, fallback.New()) }
