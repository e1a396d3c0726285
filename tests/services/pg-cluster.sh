#!/usr/bin/env bash
# Runs a throwaway PostgreSQL cluster on loopback until standard input closes, then stops and deletes it.
#
# Prints one line once the server accepts connections: its admin URL (user postgres, trust auth, loopback only).
# Tests start it with a pipe on stdin and keep the pipe open while they run; when the test process exits, for any
# reason, the pipe closes and the cluster goes away. PG_FSYNC=on keeps durable commits (benchmarks); tests run
# with fsync off.
set -euo pipefail

bindir=""
if command -v pg_ctl >/dev/null 2>&1; then
  bindir=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
else
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg-cluster: PostgreSQL server binaries not found (install Debian's postgresql package)" >&2
  exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/s3ipfs-pg.XXXXXX")
as_owner=()
if [ "$(id -u)" = 0 ]; then
  # The server refuses to run as root.
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi
cleanup() {
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fsync=${PG_FSYNC:-off}
"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=$fsync \
      -c synchronous_commit=$fsync -c full_page_writes=$fsync -c shared_buffers=128MB" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }

echo "postgres://postgres@127.0.0.1:$port/postgres"
# Wait until whoever started us goes away.
cat >/dev/null || true
