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

.PHONY: all build run test test-suites test-deps lint fmt bench clean

BIN      := $(CARGO_TARGET_DIR)/release/s3ipfs
VENV     := $(CURDIR)/.venv
# `make run` settings (the same as `s3ipfs serve`'s environment variables).
S3IPFS_LISTEN   ?= 127.0.0.1:9000
S3IPFS_DATA_DIR ?= $(CURDIR)/data
export S3IPFS_LISTEN S3IPFS_DATA_DIR

all: build

build:
	$(CARGO) build $(CARGO_FLAGS) -p s3ipfs-server

## run: build and start the gateway on the embedded stores; prints the endpoint and, on first start, the keys.
run: build
	$(BIN) serve

# The client suites run a second time with every gateway on PostgreSQL and its caches on Redis (each test its own
# database and key prefix), as production runs.
E2E_ON_POSTGRES := tests/e2e/test_awscli.py tests/e2e/test_awscli_v2.py tests/e2e/test_boto3.py \
  tests/e2e/test_rclone.py tests/e2e/test_restic.py tests/e2e/test_s3cmd.py tests/e2e/test_multipart.py \
  tests/e2e/test_gc.py tests/e2e/test_hostile.py tests/e2e/test_wire.py
# And a third time with every gateway on the Filebase content backend, each against its own Filebase stand-in (the
# 5 GiB upload is test_filebase.py's there, where the bytes crossing to the backend are counted), caches on Redis.
E2E_ON_FILEBASE := tests/e2e/test_awscli.py tests/e2e/test_awscli_v2.py tests/e2e/test_boto3.py \
  tests/e2e/test_rclone.py tests/e2e/test_restic.py tests/e2e/test_s3cmd.py tests/e2e/test_multipart.py \
  tests/e2e/test_hostile.py tests/e2e/test_wire.py tests/e2e/test_streaming.py
# And the S3 behaviour suites once more with every cache off.
E2E_CACHE_OFF := tests/e2e/test_boto3.py tests/e2e/test_wire.py tests/e2e/test_awscli.py tests/e2e/test_multipart.py
PYTEST := env -u AWS_CA_BUNDLE S3IPFS_BIN=$(BIN) PATH="$(VENV)/bin:$$PATH" $(VENV)/bin/pytest -q

## test: install what the tests need, start a throwaway PostgreSQL and Redis on loopback, run every test (unit,
## conformance on memory/SQLite/PostgreSQL, content on local, generic-S3 (moto) and Filebase stand-ins, the caches
## on each layer, in-process S3, end-to-end clients on both metadata stores, on the Filebase backend and with the
## caches in process, on Redis and off, replicas), then clean up.
test: test-deps
	$(CARGO) fmt --all -- --check
	tests/services/with-services.sh $(MAKE) --no-print-directory test-suites

test-suites:
	$(CARGO) test $(CARGO_FLAGS) --workspace --lib --bins --tests
	$(CARGO) build $(CARGO_FLAGS) -p s3ipfs-server
	$(PYTEST) tests/e2e
	S3IPFS_E2E_META=postgres S3IPFS_E2E_CACHE=redis $(PYTEST) $(E2E_ON_POSTGRES)
	S3IPFS_E2E_CONTENT=filebase S3IPFS_E2E_CACHE=redis $(PYTEST) $(E2E_ON_FILEBASE) -k 'not 5_gib'
	S3IPFS_E2E_CACHE=off $(PYTEST) $(E2E_CACHE_OFF) -k 'not 5_gib'

## test-deps: python3 (CID vector inputs), a venv with aws-cli v1, boto3, pytest, h2 and moto's S3 server (kept in step with
## tests/e2e/requirements.txt); from Debian: rclone, s3cmd, restic,
## aws-cli v2 (package awscli, /usr/bin/aws), curl, openssl, PostgreSQL (server and psql), Redis (server and cli).
test-deps:
	@command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
	@test -f "$(S3IPFS_CID_VECTORS)/vectors.tsv" || { echo "missing $(S3IPFS_CID_VECTORS)/vectors.tsv"; exit 1; }
	@cmp -s tests/e2e/requirements.txt "$(VENV)/requirements.txt" || { python3 -m venv "$(VENV)" && \
	  "$(VENV)/bin/pip" install -q -r tests/e2e/requirements.txt && cp tests/e2e/requirements.txt "$(VENV)/requirements.txt"; }
	@for tool in rclone s3cmd restic curl openssl /usr/bin/aws; do command -v $$tool >/dev/null || missing=1; done; \
	  [ -z "$$missing" ] || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone s3cmd restic awscli curl openssl; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v psql >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client; }
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools; }

## lint: formatting and clippy with warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(CARGO_FLAGS) --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

# The reference server for `make bench`, built once into a cache directory outside the clone, and the LD_PRELOAD
# shim that gives it TCP_NODELAY (it sets none; the gateway does).
REF_ROOT    ?= $(HOME)/.cache/s3ipfs-gateway/s3s-fs
REF_SERVER  := $(REF_ROOT)/bin/s3s-fs
REF_NODELAY := $(REF_ROOT)/nodelay.so

## bench: CID engine vs sha256sum/md5sum, and S3 PUT/GET on the embedded store, PostgreSQL and the Filebase backend
## (its stand-in on loopback) vs s3s-fs 0.17, each measured in the same run; hot GETs with the caches on Redis and
## off against the embedded store, and from the disk cache against the stand-in.
bench: $(REF_SERVER) $(REF_NODELAY)
	@command -v sha256sum >/dev/null && command -v md5sum >/dev/null || { apt-get update -qq && apt-get install -y -qq coreutils; }
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools; }
	$(CARGO) bench --ignore-rust-version -p s3ipfs-cid --bench throughput
	S3IPFS_REF_SERVER=$(REF_SERVER) S3IPFS_REF_PRELOAD=$(REF_NODELAY) \
	  $(CARGO) bench --ignore-rust-version -p s3ipfs-server --bench s3_load

$(REF_NODELAY): crates/server/benches/nodelay.c
	@mkdir -p $(REF_ROOT)
	cc -O2 -shared -fPIC -o $@ $< -ldl

$(REF_SERVER):
	CARGO_TARGET_DIR=$(HOME)/.cache/s3ipfs-gateway/s3s-fs-target $(CARGO) install s3s-fs --version 0.17.0 \
	  --features binary --ignore-rust-version --locked --root $(REF_ROOT)

clean:
	$(CARGO) clean
