// Package nn holds latentad's neural networks: the layers (Conv3d, ConvTranspose3d,
// GroupNorm, Linear, activations, the sinusoidal time embedding, MSE), the seed's two
// models — LatentVelocityEstimator (Velocity) and Tiny3DAE (AE) — and the Adam optimiser.
//
// There is no autograd. As in karpathy/llm.c, every layer has an explicit forward and
// backward written against compute.Device, and each model chains them by hand, keeping the
// activations its backward needs in buffers that are reused while the input shape stays the
// same. Backward overwrites every parameter gradient (each parameter is used exactly once
// per forward), so there is no zero-grad step.
//
// All parameters of a model live in one flat value tensor and one flat gradient tensor, in
// PyTorch state_dict order; each Param is a view into them. Adam is therefore a single
// fused Device.Adam call, and state dicts convert to and from PyTorch's key names.
//
// A model and its optimiser are not safe for concurrent use; Forward, Backward and Encode
// return tensors the model owns and overwrites on the next call.
//
// Parity: nn/testdata/gen_golden.py builds the same models in PyTorch (module names chosen
// so state_dict keys match) and writes the golden fixtures the tests compare against;
// finite-difference tests check every layer's backward.
package nn
