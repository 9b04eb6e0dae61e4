# aTES — every developer entry point. The generators are pinned as tools in tools/go.mod
# (`go tool -modfile=tools/go.mod buf ...` runs any of them) and built into .cache/toolbin,
# because buf finds its protoc plugins on PATH; nothing needs installing globally.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
TOOLBIN   := $(CURDIR)/.cache/toolbin
# Versions of the Go modules the vendored third-party protos are copied from.
GATEWAY_V1      := github.com/grpc-ecosystem/grpc-gateway@v1.16.0
PROTOVALIDATE   := github.com/bufbuild/protovalidate@v1.2.2
PROTO_VENDOR    := proto/third_party
# The version /openapi.json reports: the nearest tag, else the commit (+"-dirty").
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/ates/ates/services/internal/server.Version=$(VERSION)

.PHONY: web-vendor all run test breaking faulttest loadtest loadsmoke fuzz fuzzsmoke gen protodeps tools lint gen-check vet unit bench build clean mailpit

all: build

## run: migrate the database, set up each service's own broker user (rabbitmqctl: run as root
## or the rabbitmq user) and start every service in one process, each connected as its user
## (local PostgreSQL + RabbitMQ; the passwords are development defaults, set your own in the
## environment: docs/security-events.md); services may use the public development keys here
## (ATES_ALLOW_DEV_KEYS), nowhere else
run: export ATES_TASKS_AMQP_URL ?= amqp://ates-tasks:ates-tasks-dev-only@127.0.0.1:5672/
run: export ATES_TASKHANDLER_AMQP_URL ?= amqp://ates-taskhandler:ates-taskhandler-dev-only@127.0.0.1:5672/
run: export ATES_DAILYACCOUNTING_AMQP_URL ?= amqp://ates-dailyaccounting:ates-dailyaccounting-dev-only@127.0.0.1:5672/
run: export ATES_MAILSENDER_AMQP_URL ?= amqp://ates-mailsender:ates-mailsender-dev-only@127.0.0.1:5672/
## The web dashboard calls auth over loopback, passing the browser's address on in
## X-Forwarded-For; trusting loopback lets auth limit failed logins per browser rather
## than for every web user at once. Only local processes could then claim an address.
run: export ATES_TRUSTED_PROXIES ?= 127.0.0.1,::1
run:
	$(GO) run ./services/cmd/ates migrate
	$(GO) run ./services/cmd/ates broker setup
	ATES_ALLOW_DEV_KEYS=true $(GO) run -ldflags '$(LDFLAGS)' ./services/cmd/ates all

## test: lint, breaking proto changes, stale generated code, vet, race tests, a few-second smoke of the load test
## and a few seconds of each fuzz target (CI runs faulttest after it)
test: lint breaking gen-check vet unit loadsmoke fuzzsmoke

## faulttest: the fault suite: every service as a subprocess behind Toxiproxy, one fault per
## scenario under load, invariants from SQL, one results table (FAULTS=broker_cut runs one)
FAULTS ?=
faulttest:
	$(GO) test -tags faulttest -count=1 -timeout 15m -v -run 'TestFaults/$(FAULTS)' ./services/faulttest

## loadtest: every service as a subprocess on a private database and vhost; same-run baselines
## (gRPC health, pgx INSERT, AMQP publish+confirm, consume+ack), the write workloads, auth
## overhead, a seeded day of 1 M tasks (checked by `ates verify`), every read at 1 and 64
## callers; one table of req/s, p50, p99, the ratio to its baseline and each goal's verdict,
## also as JSON under services/loadtest/results/ (knobs: README.md; never in `make test`,
## which runs a smoke of it: LOADTEST_SMOKE=1)
loadtest:
	$(GO) test -tags loadtest -count=1 -timeout 15m -v -run TestLoad ./services/loadtest

## fuzz: run every fuzz target (each func FuzzX in a _test.go file under services/) for
## FUZZTIME; new crashers land in the package's testdata/fuzz/FuzzX/ (FUZZ=FuzzParse runs
## the targets whose name contains FuzzParse; FUZZFLAGS=-parallel=1 uses one core). Each
## new input is minimized for at most FUZZMINIMIZETIME: Go's default, 60s, can take a whole
## short run, as our test binaries are large and run slowly under coverage. .ci/fuzz.sh
## runs them, and tells Go 1.26's fuzz-deadline race (golang/go#75804) from a finding.
FUZZTIME         ?= 30s
FUZZMINIMIZETIME ?= 3s
FUZZ             ?=
FUZZFLAGS        ?=
fuzz:
	@GO='$(GO)' FUZZ='$(FUZZ)' FUZZTIME='$(FUZZTIME)' FUZZMINIMIZETIME='$(FUZZMINIMIZETIME)' FUZZFLAGS='$(FUZZFLAGS)' .ci/fuzz.sh

## fuzzsmoke: every fuzz target for a few seconds (part of `make test`)
FUZZSMOKETIME ?= 2s
fuzzsmoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZSMOKETIME)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ates ./services/cmd/ates

## tools: build the pinned generators, golangci-lint (and grpcurl, for the README's
## examples) into .cache/toolbin (protoc plugins must be on PATH)
tools:
	@mkdir -p $(TOOLBIN)
	cd tools && $(GO) build -o $(TOOLBIN)/ \
	  github.com/bufbuild/buf/cmd/buf \
	  github.com/fullstorydev/grpcurl/cmd/grpcurl \
	  google.golang.org/protobuf/cmd/protoc-gen-go \
	  google.golang.org/grpc/cmd/protoc-gen-go-grpc \
	  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
	  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2 \
	  github.com/sqlc-dev/sqlc/cmd/sqlc \
	  github.com/pressly/goose/v3/cmd/goose \
	  github.com/golangci/golangci-lint/v2/cmd/golangci-lint

## protodeps: copy the third-party protos we import from Go modules in the module cache
protodeps:
	@gw=$$($(GO) mod download -json $(GATEWAY_V1) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
	pv=$$($(GO) mod download -json $(PROTOVALIDATE) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
	rm -rf $(PROTO_VENDOR); mkdir -p $(PROTO_VENDOR)/google/api $(PROTO_VENDOR)/buf/validate; \
	install -m 0644 $$gw/third_party/googleapis/google/api/annotations.proto $$gw/third_party/googleapis/google/api/http.proto $(PROTO_VENDOR)/google/api/; \
	install -m 0644 $$pv/proto/protovalidate/buf/validate/validate.proto $(PROTO_VENDOR)/buf/validate/

## gen: regenerate gen/ (protobuf, gRPC, gateway, OpenAPI) and the sqlc packages
gen: tools protodeps
	rm -rf gen
	PATH=$(TOOLBIN):$$PATH buf generate
	printf '%s\n' '// Code generated by make gen. DO NOT EDIT.' '' \
	  '// Package openapi embeds the OpenAPI (Swagger 2.0) document protoc-gen-openapiv2 writes.' \
	  'package openapi' '' 'import _ "embed"' '' \
	  '// Swagger is ates.swagger.json: every service'"'"'s REST API in one document.' \
	  '//' '//go:embed ates.swagger.json' 'var Swagger []byte' > gen/openapi/openapi.go
	$(TOOLBIN)/sqlc generate

## lint: proto style, SQL checks, golangci-lint (.golangci.yml: the layering rules and the
## linters, over the faulttest and loadtest suites too) and go.mod as `go mod tidy` would leave it
lint: tools protodeps
	$(TOOLBIN)/buf lint
	$(TOOLBIN)/sqlc vet
	$(TOOLBIN)/golangci-lint run ./...
	$(GO) mod tidy -diff

## breaking: fail if a .proto change breaks existing clients (buf's FILE rules, buf.yaml):
## the tree is compared with the commit this branch left main at (git merge-base; main or
## origin/main), or, on main itself, with main's previous commit (HEAD~1: before the last
## merge). BREAKING_AGAINST='<buf input>' compares with something else. A clone without
## that history (git clone --depth 1 on main) has nothing to compare with: skipped, said so.
BREAKING_AGAINST ?=
breaking: tools protodeps
	@against='$(BREAKING_AGAINST)'; \
	if [ -z "$$against" ]; then \
	  main=$$(git rev-parse -q --verify 'main^{commit}' || git rev-parse -q --verify 'origin/main^{commit}' || true); \
	  if [ -z "$$main" ] || [ "$$main" = "$$(git rev-parse HEAD)" ]; then base=$$(git rev-parse -q --verify 'HEAD~1^{commit}' || true); \
	  else base=$$(git merge-base HEAD "$$main"); fi; \
	  if [ -z "$$base" ]; then echo "breaking: no earlier commit to compare the protos with; skipped" >&2; exit 0; fi; \
	  against=".git#ref=$$base"; \
	fi; \
	echo "buf breaking --against '$$against'"; \
	$(TOOLBIN)/buf breaking --against "$$against"

## gen-check: fail if the generated code in the tree differs from a fresh `make gen`
GENERATED = gen proto/third_party $(wildcard services/*/internal/*db)
gen-check:
	@snap=$$(mktemp -d); trap 'rm -rf "$$snap"' EXIT; \
	for d in $(GENERATED); do mkdir -p "$$snap/$$d"; cp -a "$$d/." "$$snap/$$d/"; done; \
	$(MAKE) --no-print-directory gen >/dev/null; \
	stale=0; for d in $(GENERATED); do diff -r "$$snap/$$d" "$$d" || stale=1; done; \
	if [ $$stale = 1 ]; then echo "generated code is stale: run 'make gen' and commit the result" >&2; exit 1; fi; \
	echo "generated code is up to date"

vet:
	$(GO) vet ./...
	$(GO) vet -tags faulttest ./services/faulttest
	$(GO) vet -tags loadtest ./services/loadtest

unit: mailpit
	$(GO) test -race -count=1 ./...

## loadsmoke: the load harness at a tiny size, every phase and row (part of `make test`)
loadsmoke: mailpit
	LOADTEST_SMOKE=1 $(GO) test -tags loadtest -count=1 -timeout 3m -run TestLoad ./services/loadtest

## mailpit: make sure a real SMTP server (Mailpit) runs on 127.0.0.1:1025 for the tests
mailpit:
	bash .ci/mailpit.sh

## bench: the benchmarks that carry the speed goals
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin .cache

## web-vendor: fetch the web dashboard's browser libraries from the npm registry (`npm
## pack`: Node is needed for this only, never at run time) into services/web/static/vendor/
## with their licenses, and record name, version, sha256 and license in its VERSIONS
## (a Go test checks the files against it); also axe-core, for the browser tests'
## accessibility audit, into services/internal/browsertest/axe/ (its sha256 in axe.go)
HTMX_VERSION    ?= 2.0.11
CHARTJS_VERSION ?= 4.6.1
WEB_VENDOR      := services/web/static/vendor
# axe-core audits the pages' accessibility in the browser tests; it is never served.
AXE_VERSION     ?= 4.14.1
AXE_VENDOR      := services/internal/browsertest/axe
web-vendor:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd "$$tmp" && npm pack --silent htmx.org@$(HTMX_VERSION) chart.js@$(CHARTJS_VERSION) >/dev/null); \
	mkdir -p "$$tmp/htmx" "$$tmp/chartjs" $(WEB_VENDOR); \
	tar -xzf "$$tmp/htmx.org-$(HTMX_VERSION).tgz" -C "$$tmp/htmx"; \
	tar -xzf "$$tmp/chart.js-$(CHARTJS_VERSION).tgz" -C "$$tmp/chartjs"; \
	cp "$$tmp/htmx/package/dist/htmx.min.js" $(WEB_VENDOR)/htmx.min.js; \
	cp "$$tmp/htmx/package/LICENSE" $(WEB_VENDOR)/htmx.LICENSE; \
	cp "$$tmp/chartjs/package/dist/chart.umd.min.js" $(WEB_VENDOR)/chart.umd.min.js; \
	cp "$$tmp/chartjs/package/LICENSE.md" $(WEB_VENDOR)/chart.js.LICENSE.md; \
	{ echo '# file name version sha256 license (make web-vendor writes this; a test checks it)'; \
	  echo "htmx.min.js htmx.org $(HTMX_VERSION) $$(sha256sum $(WEB_VENDOR)/htmx.min.js | cut -d' ' -f1) 0BSD"; \
	  echo "chart.umd.min.js chart.js $(CHARTJS_VERSION) $$(sha256sum $(WEB_VENDOR)/chart.umd.min.js | cut -d' ' -f1) MIT"; \
	} > $(WEB_VENDOR)/VERSIONS; \
	cat $(WEB_VENDOR)/VERSIONS; \
	(cd "$$tmp" && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null); \
	mkdir -p "$$tmp/axe" $(AXE_VENDOR); \
	tar -xzf "$$tmp/axe-core-$(AXE_VERSION).tgz" -C "$$tmp/axe"; \
	cp "$$tmp/axe/package/axe.min.js" "$$tmp/axe/package/LICENSE" $(AXE_VENDOR)/; \
	sed -i -e 's/^\(\taxeVersion = \).*/\1"$(AXE_VERSION)"/' \
	  -e "s/^\(\taxeSHA256  = \).*/\1\"$$(sha256sum $(AXE_VENDOR)/axe.min.js | cut -d' ' -f1)\"/" \
	  services/internal/browsertest/axe.go; \
	echo "axe-core $(AXE_VERSION) (browser tests only) in $(AXE_VENDOR)"
