package nn

import (
	"fmt"

	"github.com/latentad/latentad/compute"
)

// MSE returns mean((pred-target)²) over all elements, summed in float64 on the host, and,
// when grad != nil, writes dL/dpred = 2·(pred-target)/N into grad (PyTorch's mse_loss
// backward: the difference rounded once, then scaled). Reading the loss waits for the
// device; use MSEGrad when only the gradient is needed.
func MSE(dev compute.Device, pred, target, grad *compute.Tensor) float64 {
	checkSameLen("MSE", pred, target)
	n := pred.Len()
	diff := make([]float32, n)
	if grad != nil {
		checkSameLen("MSE gradient", pred, grad)
		dev.AXPBY(1, pred, -1, target, grad) // exactly fl(pred - target)
		dev.Download(grad, diff)
		dev.AXPBY(float32(2/float64(n)), grad, 0, grad, grad)
	} else {
		p := make([]float32, n)
		dev.Download(pred, p)
		dev.Download(target, diff)
		for i := range diff {
			diff[i] = p[i] - diff[i]
		}
	}
	var s float64
	for _, d := range diff {
		s += float64(d) * float64(d)
	}
	return s / float64(n)
}

// MSEGrad writes dL/dpred of mean((pred-target)²) into grad without reading anything back.
func MSEGrad(dev compute.Device, pred, target, grad *compute.Tensor) {
	checkSameLen("MSEGrad", pred, target)
	checkSameLen("MSEGrad gradient", pred, grad)
	dev.AXPBY(1, pred, -1, target, grad)
	dev.AXPBY(float32(2/float64(pred.Len())), grad, 0, grad, grad)
}

func checkSameLen(what string, a, b *compute.Tensor) {
	if a.Len() != b.Len() {
		panic(fmt.Sprintf("nn.%s: shapes %v and %v differ in size", what, a.Shape(), b.Shape()))
	}
}
