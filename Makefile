# latentad — build, test, benchmark, lint. `make test` is what CI runs (.ci/run).
GO ?= go
PKGS := ./...

.PHONY: build test test-purego bench lint darwin-check demo fixtures

build:
	$(GO) build -o bin/latentad ./cmd/latentad

# The whole suite: every package with the assembly kernels; then the CPU backend and the
# models again with the plain-Go kernels (-tags purego), as on machines without AVX2/FMA;
# then the Metal kernels in the emulator with each threadgroup's threads in shuffled order,
# which exposes races and missing barriers.
test:
	$(GO) test -count=1 -timeout 40m $(PKGS)
	$(GO) test -count=1 -timeout 20m -tags purego ./fallback/... ./nn/...
	LATENTAD_EMU_ORDER=shuffle $(GO) test -count=1 -timeout 20m ./metal/...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./fallback/... ./metal/...
	$(GO) run ./cmd/latentad bench --device cpu --json

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet $(PKGS)

# Type-checks the darwin-only Metal host code for GOOS=darwin GOARCH=arm64 without a Mac.
darwin-check:
	$(GO) run ./internal/darwincheck

demo: build
	./bin/latentad demo

# Regenerates the golden fixtures with PyTorch (Debian python3-torch; /usr/bin/python3).
fixtures:
	for f in $$(git ls-files '*/testdata/gen_*.py'); do (cd $$(dirname $$(dirname $$f)) && /usr/bin/python3 testdata/$$(basename $$f)) || exit 1; done
