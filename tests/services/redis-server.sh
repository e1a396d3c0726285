#!/usr/bin/env bash
# Runs a throwaway Redis on loopback until standard input closes, then stops it and deletes its directory.
#
# Prints one line once the server answers PING: its URL. No persistence; `REDIS_PORT` picks the port (a restarted
# server can come back on the same one), otherwise a free one is chosen.
set -euo pipefail

server=$(command -v redis-server || true)
if [ -z "$server" ]; then
  echo "redis-server: not found (install Debian's redis-server package)" >&2
  exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/s3ipfs-redis.XXXXXX")
port=${REDIS_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
"$server" --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no --daemonize no \
  --maxmemory 256mb --maxmemory-policy allkeys-lru --logfile "$dir/redis.log" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
    echo "redis://127.0.0.1:$port"
    # Wait until whoever started us goes away.
    cat >/dev/null || true
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
cat "$dir/redis.log" >&2 || true
echo "redis-server: did not start" >&2
exit 1
