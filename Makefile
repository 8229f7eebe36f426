# mcpproxy — see README.md. `make help` lists the targets.

GO        ?= go
BIN       ?= bin/mcpproxy
DATA_DIR  ?= $(HOME)/.mcpproxy
LISTEN    ?= 127.0.0.1:8080
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
TAGS      ?= nomsgpack
# A count of executions, not a duration: go1.26's fuzz coordinator can report "context
# deadline exceeded" as a failure when a duration ends while a worker is busy on a loaded
# machine (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZTIME  ?= 100000x

.PHONY: help build run test test-go fuzz lint-spec lint tidy bench soak npm

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/mcpproxy and the small guard it runs each stdio upstream under, bin/mcpproxy-guard
	$(GO) build -buildvcs=auto -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mcpproxy
	$(GO) build -buildvcs=auto -ldflags "-s -w" -o $(dir $(BIN))mcpproxy-guard ./cmd/mcpproxy-guard

run: build ## build and start the proxy (default data dir ~/.mcpproxy; DATA_DIR=... LISTEN=... to change)
	./$(BIN) serve --data-dir $(DATA_DIR) --listen $(LISTEN) --log-level info

npm: ## install the npm peers the tests use (server-everything, SDK clients, playwright-core, redocly)
	cd test && npm ci --no-audit --no-fund

test: lint test-go fuzz lint-spec ## run every test: vet, gofmt, go test -race ./..., a short fuzz run, the spec lint

test-go:
	@test -d test/node_modules || $(MAKE) npm
	$(GO) test -race -count=1 -timeout 40m $$($(GO) list ./... | grep -v /node_modules/)

fuzz: ## a short run of the config parser fuzzer (FUZZTIME=100000x executions)
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./config/

lint-spec: ## lint oas/swagger.yaml with @redocly/cli
	@test -d test/node_modules || $(MAKE) npm
	npx --prefix test --no-install redocly lint --config oas/redocly.yaml oas/swagger.yaml

lint: ## gofmt and go vet
	@out=$$(gofmt -l actors http cmd config oas test 2>/dev/null | grep -v node_modules); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $$($(GO) list ./... | grep -v /node_modules/)

tidy: ## go mod tidy
	$(GO) mod tidy

bench: build ## run the benchmarks B1-B10 and print the table
	$(GO) run ./test/bench

soak: ## the long fault suite
	MCPPROXY_SOAK=1 $(GO) test -race -count=1 -timeout 60m -run 'Fault|Soak' ./test/
