#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL cluster (pg-cluster.sh) and a throwaway Redis (redis-server.sh):
# S3IPFS_TEST_PG_URL names the cluster's admin URL (tests create their own databases on it) and
# S3IPFS_TEST_REDIS_URL the Redis (tests use their own key prefixes on it). Both are gone when the command ends.
# A service that cannot start fails the run: tests that need one are never skipped.
set -euo pipefail
here=$(dirname "$0")

coproc PG { exec bash "$here/pg-cluster.sh"; }
url=""
read -r url <&"${PG[0]}" || true
if [[ $url != postgres://* ]]; then
  echo "with-services: PostgreSQL did not start" >&2
  exit 1
fi
export S3IPFS_TEST_PG_URL=$url

# bash keeps one coproc at a time: Redis gets a FIFO for its standard input and a file for its URL.
fifo=$(mktemp -d "${TMPDIR:-/tmp}/s3ipfs-services.XXXXXX")
mkfifo "$fifo/redis.in"
bash "$here/redis-server.sh" <"$fifo/redis.in" >"$fifo/redis.url" &
redis_pid=$!
exec {redis_in}>"$fifo/redis.in"
redis=""
for _ in $(seq 1 300); do
  redis=$(head -n 1 "$fifo/redis.url" 2>/dev/null || true)
  [[ -n $redis ]] || ! kill -0 "$redis_pid" 2>/dev/null && break
  sleep 0.1
done
rm -rf "$fifo"
if [[ $redis != redis://* ]]; then
  echo "with-services: Redis did not start" >&2
  exit 1
fi
export S3IPFS_TEST_REDIS_URL=$redis

status=0
# The command does not inherit the services' pipes: whatever it leaves running cannot keep them alive.
eval "\"\$@\" ${PG[0]}<&- ${PG[1]}>&- ${redis_in}>&-" || status=$?
# Closing a service's standard input stops and deletes it.
eval "exec ${PG[1]}>&- ${redis_in}>&-"
wait "$PG_PID" 2>/dev/null || true
wait "$redis_pid" 2>/dev/null || true
exit "$status"
