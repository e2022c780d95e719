#!/bin/sh
# Concurrent bridged calls with RTP (tests/bridge_bench.rs), for a list of pair counts.
#
#   bench/bridge-bench.sh [PAIRS...]        e.g. bench/bridge-bench.sh 500 1000 2000
#
# Env: SECONDS_PER_RUN (30), REPEAT (1), MAX_LOAD (1-minute load average to wait for before
# each run, default 2.0; the wait is bounded by MAX_WAIT seconds, default 600), plus the
# harness's own PCMA_PERCENT, WORKERS, GEN_SOCKETS, TICK_US. Prints `uptime` before and after
# each run. PRIORITY=1 runs the benchmark in a session of its own with autogroup nice -19 (needs
# root; plain `nice` does not help against other sessions' builds with sched_autogroup on).
set -eu
cd "$(dirname "$0")/.."
PAIRS_LIST=${*:-"500 1000 1500 2000"}
SECS=${SECONDS_PER_RUN:-30}
REPEAT=${REPEAT:-1}
MAX_LOAD=${MAX_LOAD:-2.0}
MAX_WAIT=${MAX_WAIT:-600}
# One release build first, so the runs below do not compile.
BIN=$(cargo test --release -p boomerang --test bridge_bench --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n 1)
[ -x "$BIN" ] || { echo "could not build the bridge_bench test binary" >&2; exit 1; }
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
        if [ "${PRIORITY:-0}" = 1 ]; then
            PAIRS=$pairs RTP_SECONDS=$SECS setsid -w sh -c \
                'echo -19 > /proc/self/autogroup; exec nice -n -19 "$0" --ignored --nocapture' "$BIN" || true
        else
            PAIRS=$pairs RTP_SECONDS=$SECS "$BIN" --ignored --nocapture || true
        fi
        echo "== after: $(uptime)"
    done
done
