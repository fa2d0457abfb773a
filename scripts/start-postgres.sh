#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the tests and print its URL.
# Usage: scripts/start-postgres.sh [DIR] [PORT]   (needs Debian's postgresql package)
set -euo pipefail
dir=${1:-/tmp/weizhili-pg}
port=${2:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
  echo "PostgreSQL server binaries not found: apt-get install postgresql" >&2
  exit 1
fi
run() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
if [ ! -f "$dir/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  run "$bin/initdb -D $dir -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
fi
if ! run "$bin/pg_ctl -D $dir status" >/dev/null 2>&1; then
  run "$bin/pg_ctl -D $dir -l $dir/server.log -w -o \"-h 127.0.0.1 -p $port -k $dir\" start" >/dev/null
fi
for db in weizhili_test weizhili_bench; do
  psql -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE $db"
done
echo "postgresql+asyncpg://postgres@127.0.0.1:$port/weizhili_test"
