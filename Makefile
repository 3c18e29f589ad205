# One entry point for people and CI (`.ci/run` calls `make test`). `make help` lists targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

.PHONY: install
install: $(VENV)/.installed ## create .venv with the test and benchmark dependencies

.PHONY: build-dev
build-dev: install ## build the extension (debug) into .venv
	maturin develop -q

.PHONY: build-release
build-release: install ## build the extension (release, for benchmarks) into .venv
	maturin develop -q --release

.PHONY: wheel
wheel: install ## the release wheel (one abi3 wheel, Python >= 3.11) and the sdist, into dist/
	maturin build --release --locked -o dist
	maturin sdist -o dist

.PHONY: demo
demo: build-dev ## the demo: a database in a local folder: write, read, scan, reopen
	slatedb-py demo

.PHONY: test-rust
test-rust: install ## cargo test of the native core, then of its Python error mapping
	cargo test --locked
	cargo test --locked --features python

.PHONY: test-python
test-python: build-dev ## pytest, slow tests (fuzzing, crash loops) included
	$(PY) -m pytest -q

.PHONY: test-fast
test-fast: build-dev ## pytest without the slow tests
	$(PY) -m pytest -q -m "not slow"

.PHONY: install-ceph
install-ceph: ## Debian's Ceph packages for the RADOS Gateway job (needs root)
	@command -v radosgw >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ceph-mon ceph-osd radosgw ceph-common >/dev/null)

.PHONY: test-rgw
test-rgw: build-dev install-ceph ## the integration suite on a one-node Ceph RADOS Gateway (slow)
	SLATEDB_PY_STORES=rgw $(PY) -m pytest -q tests/integration -k rgw

# What `make lint` checks, in the project's own Python and Rust code.
PY_SOURCES := python tests benches examples

.PHONY: lint
lint: build-dev ## ruff, mypy (strict), stubtest of the native module, cargo fmt and clippy
	$(PY) -m ruff check $(PY_SOURCES)
	$(PY) -m ruff format --check $(PY_SOURCES)
	$(PY) -m mypy
	$(PY) -m mypy.stubtest slatedb_py._native
	cargo fmt --check
	cargo clippy --all-targets --locked -- -D warnings
	cargo clippy --all-targets --locked --features python -- -D warnings

.PHONY: test
test: lint test-rust test-python test-rgw ## the whole test suite (what CI runs), lint first

# Fixtures shared with the Rust crate's current release (tests/data/README.md, "SlateDB 0.18").
# Only this target builds the slatedb crate (slow, in its own target dir); CI checks the
# checked-in results instead.
GEN018 := tests/data/gen018
GEN018_TARGET ?= /tmp/target-gen018

.PHONY: golden-018
golden-018: build-dev ## rewrite tests/data/golden018 + pywritten, and the 0.18 reverse check (builds slatedb 0.18)
	cd $(GEN018) && CARGO_TARGET_DIR=$(GEN018_TARGET) cargo build --locked
	$(GEN018_TARGET)/debug/gen018 write tests/data/golden018
	$(PY) tests/data/make_pywritten.py tests/data/pywritten
	$(GEN018_TARGET)/debug/gen018 reverse tests/data tests/data/golden018/reverse.json

.PHONY: bench
bench: build-release ## benchmarks side by side with rocksdict and a memory copy
	$(PY) -m pytest benches -q --benchmark-enable --benchmark-columns=mean,ops --benchmark-sort=name -p no:cacheprovider
	$(PY) benches/compare_db.py
	$(PY) benches/compare_checkpoints.py
	$(PY) benches/compare_compaction.py
	$(PY) benches/scale.py

.PHONY: golden
golden: install ## regenerate tests/data/golden with the real SlateDB 0.17.0
	$(PY) tests/data/make_golden.py

.PHONY: clean
clean: ## remove build outputs and the venv
	rm -rf target $(VENV) .pytest_cache .hypothesis
