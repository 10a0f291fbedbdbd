// Package data turns what users have on disk into arrays: CT cohorts of NIfTI volumes
// (SPEC.md section 1: patient folders, the LV mask, preprocessing, the metadata and split
// CSVs with the seed's matching rules) and latents files (.npy plus index.csv).
//
// Cohort layout: <root>/<pid>/<pid>_roi.nii.gz, optionally with the left-ventricle mask
// <root>/<pid>/heart_ventricle_left_roi.nii.gz. Folders are taken in sorted name order.
// A volume becomes a (1, Z, Y, X) float32 array in [-1, 1]; see Preprocess.
//
// The NIfTI codec itself lives in data/nifti; synthetic cohorts in data/synth.
package data
