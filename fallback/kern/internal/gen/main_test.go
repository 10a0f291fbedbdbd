package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGeneratedUpToDate fails when the committed assembly or its declarations differ
// from what the generator writes (someone edited one without the other); fix with
// `go generate ./fallback/kern`.
func TestGeneratedUpToDate(t *testing.T) {
	asmText, decl := generate()
	neonText, neonDecl := generateNEON()
	for path, want := range map[string][]byte{"../../micro_amd64.s": asmText, "../../micro_decl_amd64.go": decl,
		"../../micro_arm64.s": neonText, "../../micro_decl_arm64.go": neonDecl, "../../gn_amd64.s": generateGN()} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run `go generate ./fallback/kern`", path)
		}
	}
}
