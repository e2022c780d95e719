#!/usr/bin/env bash
# Benchmark of POST start-callback with durable commit, driven by wrk (a C load generator in
# its own process): 64 connections for 10 s after a 2 s warm-up. Prints wrk's report and the
# number of records in the database afterwards.
# Usage: bench/run-start-callback.sh [CONNECTIONS] [SECONDS] [SERVICE]
# SERVICE: bench (default: no calendar) or bench-cap (office hours and slot capacity checked).
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-64}
SECS=${2:-10}
SERVICE=${3:-bench}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release --bin boomerang -q
work=$(mktemp -d)
sed "s|DB_PATH|$work/bench.db|" bench/bench.toml > "$work/bench.toml"
RUST_LOG=warn target/release/boomerang serve --config "$work/bench.toml" > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q "listening" "$work/server.log" && break; sleep 0.1; done
url=http://127.0.0.1:18080/genesys/1/service/callback/$SERVICE
wrk -t2 -c"$CONNS" -d2s -s bench/start_callback.lua "$url" > /dev/null
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s bench/start_callback.lua "$url"
kill -INT $server; wait $server 2>/dev/null || true
echo "records in the database: $(sqlite3 "$work/bench.db" 'SELECT COUNT(*) FROM callbacks' 2>/dev/null || echo '?')"
