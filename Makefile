# MyScrollr Connect. `make dev` runs the marketplace locally, `make test` runs every test.
# Every target loops over the workspace modules listed in go.work.

MODULES   := events functions infra/local schemas shared tests wasmhost
FUNCTION_NAMES := $(notdir $(patsubst %/main.go,%,$(wildcard functions/*/main.go)))
GO        ?= go
# Tests that start PostgreSQL clusters and Kafka clusters in process; 2 packages at a time
# keeps a 2-core machine responsive.
TESTFLAGS ?= -race -p 2 -timeout 15m
BENCHTIME ?= 1s
BENCHOUT  ?= bench/results

.PHONY: dev test test-short bench lint check build tidy generate fmt clean transforms

dev:
	$(GO) run ./infra/local/cmd/connect-dev

# Knative images leave the Lambda adapter out (shared/runtime/doc.go).
BUILDFLAGS ?= -trimpath -ldflags=-s -tags=nolambda

test:
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test $(TESTFLAGS) ./...); done
	@echo "== shared (-tags nolambda)"; cd shared && $(GO) test $(TESTFLAGS) -tags nolambda ./runtime/

test-short:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -short $(TESTFLAGS) ./...); done

bench:
	@mkdir -p $(BENCHOUT)
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -skip 'BenchmarkRelay' -benchmem -benchtime $(BENCHTIME) ./...); done | tee $(BENCHOUT)/go-bench.txt
	$(GO) run ./tests/coldstart/cmd/coldstart -fn github.com/myscrollr/connect/functions/catalog -pg -n 20 -buildflags "$(BUILDFLAGS)" -out $(BENCHOUT)/coldstart.json
	cd functions && $(GO) test -run '^$$' -bench 'BenchmarkRelay' -benchtime 20000x ./relay/ | tee ../$(BENCHOUT)/relay.txt
	cd functions && $(GO) test -run '^$$' -bench 'BenchmarkSweep10k' -benchtime 3x ./health-probe/ | tee ../$(BENCHOUT)/health-probe.txt
	$(GO) run ./tests/catalogload/cmd/catalogload -out $(BENCHOUT)/catalogload.json | tee $(BENCHOUT)/catalogload.txt
	$(GO) run ./tests/installload/cmd/installload -n 2000 -c 32 -out $(BENCHOUT)/installload.json | tee $(BENCHOUT)/installload.txt
	$(GO) run ./tests/installload/cmd/installload -n 4000 -rate 200 -direct -out $(BENCHOUT)/installload-direct.json | tee $(BENCHOUT)/installload-direct.txt

build:
	@mkdir -p bin
	@set -e; for f in $(FUNCTION_NAMES); do echo "bin/$$f"; $(GO) build $(BUILDFLAGS) -o bin/$$f ./functions/$$f; done

lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

fmt:
	gofmt -w $(MODULES)

tidy:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

generate:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) generate ./...); done

# check fails when formatting, tidying or generating changes the tree, or lint fails.
check: fmt tidy generate lint
	@git diff --exit-code --stat || (echo "make check: the tree changed; commit the result" && exit 1)
	@test -z "$$(git status --porcelain --untracked-files=normal)" || (git status --short; echo "make check: untracked or modified files" && exit 1)

# The example WASM transforms (wasmhost/examples: the quotes transform in Go and in
# AssemblyScript, whose compiler version is pinned in its package-lock.json) into wasmhost/build/
# (gitignored). wasmhost's tests build their own copies.
transforms:
	@mkdir -p wasmhost/build
	cd wasmhost && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o build/quotes-go.wasm ./examples/go
	cd wasmhost/examples/assemblyscript && npm ci --no-audit --no-fund && npm run build && cp build/quotes.wasm ../../build/quotes-as.wasm

clean:
	rm -rf bin .dev wasmhost/build
