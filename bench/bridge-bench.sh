#!/bin/sh
# Concurrent bridged calls with RTP (tests/bridge_bench.rs), for a list of pair counts.
#
#   bench/bridge-bench.sh [PAIRS...]        e.g. bench/bridge-bench.sh 500 1000 2000
#
# Env: SECONDS_PER_RUN (30), REPEAT (1), MAX_LOAD (1-minute load average to wait for before
# each run, default 2.0; the wait is bounded by MAX_WAIT seconds, default 600), plus the
# harness's own PCMA_PERCENT, WORKERS, GEN_SOCKETS. Prints `uptime` before and after each run.
set -eu
cd "$(dirname "$0")/.."
PAIRS_LIST=${*:-"500 1000 1500 2000"}
SECS=${SECONDS_PER_RUN:-30}
REPEAT=${REPEAT:-1}
MAX_LOAD=${MAX_LOAD:-2.0}
MAX_WAIT=${MAX_WAIT:-600}
# One release build first, so the runs below do not compile.
cargo test --release -p boomerang --test bridge_bench --no-run
for pairs in $PAIRS_LIST; do
    i=0
    while [ "$i" -lt "$REPEAT" ]; do
        i=$((i + 1))
        waited=0
        while [ "$waited" -lt "$MAX_WAIT" ] &&
            awk -v max="$MAX_LOAD" '{ exit !($1 > max) }' /proc/loadavg; do
            sleep 10
            waited=$((waited + 10))
        done
        echo "== pairs=$pairs seconds=$SECS run $i; before: $(uptime)"
        PAIRS=$pairs RTP_SECONDS=$SECS cargo test --release -p boomerang --test bridge_bench \
            -- --ignored --nocapture 2>&1 | grep -v '^\s*\(Finished\|Running\)' || true
        echo "== after: $(uptime)"
    done
done
