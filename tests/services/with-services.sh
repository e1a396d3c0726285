#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL cluster (tests/services/pg-cluster.sh): S3IPFS_TEST_PG_URL names the
# cluster's admin URL, tests create their own databases on it, and the cluster is gone when the command ends.
# A cluster that cannot start fails the run: tests that need PostgreSQL are never skipped.
set -euo pipefail

coproc PG { exec bash "$(dirname "$0")/pg-cluster.sh"; }
url=""
read -r url <&"${PG[0]}" || true
if [[ $url != postgres://* ]]; then
  echo "with-postgres: PostgreSQL did not start" >&2
  exit 1
fi
export S3IPFS_TEST_PG_URL=$url
status=0
# The command does not inherit the cluster's pipes: whatever it leaves running cannot keep the cluster alive.
eval "\"\$@\" ${PG[0]}<&- ${PG[1]}>&-" || status=$?
# Closing the cluster's standard input stops and deletes it.
eval "exec ${PG[1]}>&-"
wait "$PG_PID" 2>/dev/null || true
exit "$status"
