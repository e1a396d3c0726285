# s3-ipfs-gateway — build, test and benchmark entry points.
#
# One cargo profile (release) serves tests, benchmarks and the binary, so CI compiles the dependencies once.
# s3s 0.17 declares rust 1.96 while these machines have 1.95; it builds and runs with --ignore-rust-version,
# which every cargo call below passes.

CARGO       ?= cargo
CARGO_FLAGS := --ignore-rust-version --release
# Reuse one target dir outside the clone, so a fresh clone (CI) does not rebuild everything.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/s3ipfs-gateway/target
# The CID vector suite lives beside the repository (../shared); override to point elsewhere.
export S3IPFS_CID_VECTORS ?= $(abspath $(CURDIR)/../shared/cid-vectors)

.PHONY: all build test test-deps lint fmt bench clean

all: build

build:
	$(CARGO) build $(CARGO_FLAGS) --workspace

## test: install what the tests need, then run every test of the workspace.
test: test-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) test $(CARGO_FLAGS) --workspace --lib --bins --tests

## test-deps: tools the tests call (python3 generates the CID vector inputs).
test-deps:
	@command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3; }
	@test -f "$(S3IPFS_CID_VECTORS)/vectors.tsv" || { echo "missing $(S3IPFS_CID_VECTORS)/vectors.tsv"; exit 1; }

## lint: formatting and clippy with warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --ignore-rust-version --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: CID engine throughput against sha256sum/md5sum measured in the same run, and peak memory.
bench:
	@command -v sha256sum >/dev/null && command -v md5sum >/dev/null || { apt-get update -qq && apt-get install -y -qq coreutils; }
	$(CARGO) bench --ignore-rust-version -p s3ipfs-cid --bench throughput

clean:
	$(CARGO) clean
