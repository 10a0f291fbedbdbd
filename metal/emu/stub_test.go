//go:build !(linux && cgo)

package emu

import (
	"errors"
	"testing"
)

func TestUnavailable(t *testing.T) {
	if _, err := New(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("New() error = %v, want ErrUnavailable", err)
	}
}
