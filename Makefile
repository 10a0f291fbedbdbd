# latentad — build, test, benchmark, lint. `make test` is what CI runs (.ci/run).
GO ?= go
PKGS := ./...

.PHONY: build test test-purego bench lint darwin-check demo fixtures

build:
	$(GO) build -o bin/latentad ./cmd/latentad

# The whole suite: every package with the assembly kernels; then the CPU backend and the
# models again with the plain-Go kernels (-tags purego), as on machines without AVX2/FMA;
# then the Metal kernels in the emulator with each threadgroup's threads in shuffled order,
# which exposes races and missing barriers; then the CPU backend built for arm64 (NEON
# micro-kernels, as on Apple CPUs with Metal off) run under qemu-user (.ci/run installs it).
# LATENTAD_CPU=avx2 runs the CPU backend and the models again on the AVX2/FMA set even on an
# AVX-512 machine, so every x86 set is tested whatever machine CI lands on.
test:
	$(GO) test -count=1 -timeout 40m $(PKGS)
	$(GO) test -count=1 -timeout 20m -tags purego ./fallback/... ./nn/...
	LATENTAD_CPU=avx2 $(GO) test -count=1 -timeout 20m ./fallback/... ./nn/...
	LATENTAD_EMU_ORDER=shuffle $(GO) test -count=1 -timeout 20m ./metal/...
	@command -v qemu-aarch64 >/dev/null || { echo 'qemu-aarch64 missing: apt-get install qemu-user (see .ci/run)'; exit 1; }
	GOARCH=arm64 $(GO) test -count=1 -timeout 20m -exec qemu-aarch64 ./fallback/...

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

# Regenerates the committed golden fixtures with PyTorch, nibabel, sklearn and scipy
# (Debian's python3-* packages; /usr/bin/python3). flow/testdata/gen_scores.py and
# cli/testdata/gen_extract.py are not here: tests run them at test time (internal/pyfix).
FIXTURES := checkpoint/testdata/gen_fixtures.py data/nifti/testdata/gen_expect.py \
	data/testdata/gen_fixtures.py ddpm/testdata/gen_fixtures.py eval/testdata/gen_fixtures.py \
	fallback/kern/testdata/gen_fixtures.py fallback/testdata/gen_fixtures.py nn/testdata/gen_golden.py
fixtures:
	for f in $(FIXTURES); do /usr/bin/python3 $$f || exit 1; done
