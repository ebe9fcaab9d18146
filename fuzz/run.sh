#!/usr/bin/env bash
# Runs every fuzz target, one at a time, until it has used SECONDS_PER_TARGET
# seconds of CPU (default 60), and prints per target the CPU seconds used,
# libFuzzer's number of executed inputs and whether it crashed.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# CPU time, not wall time: on a shared machine a target gets a fraction of a
# core, so a target is rerun (on its grown corpus) until its CPU time adds up,
# at most MAX_ROUNDS times. Every run has libFuzzer's memory limits and
# per-input timeout, so an abort, an out-of-memory and a stall all count as
# crashes: crash inputs land in fuzz/artifacts/<target>/; copy each into
# fuzz/regressions/<target>/ once fixed (see README.md).
#
# Environment: CARGO_TARGET_DIR (default: ../fuzz-target next to fuzz/),
# NO_BUILD=1 to skip `cargo +nightly fuzz build`, LOG (default
# fuzz/last-run.txt), MAX_ROUNDS (default 20). Not run in CI.
set -u
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(cd .. && pwd)/fuzz-target}
log=${LOG:-$(pwd)/last-run.txt}
max_rounds=${MAX_ROUNDS:-20}
# The order is the order of risk: a peer's bytes first.
all=(deliver session chunk sync_message frame_decode handshake statement invite
     cert_pin feed_verify feed_export config scrub anonymize)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

if [ -z "${NO_BUILD:-}" ]; then
    cargo +nightly fuzz build -O || exit 1
fi
bin_dir=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
# The bundled SQLite amalgamation defines the same static table twice, which
# ASan's ODR check reports at start-up before any input runs (not a finding).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

: > "$log"
echo "fuzz/run.sh $secs s of CPU per target, started $(date -u +%FT%TZ), $(nproc) cores" | tee -a "$log"
table="| target | CPU s | runs | crashes |"$'\n'"|---|---:|---:|---|"
for t in "${targets[@]}"; do
    mkdir -p "work-corpus/$t" "artifacts/$t"
    cpu=0 runs=0 crash=none round=0
    while [ "$(echo "$cpu < $secs" | bc)" = 1 ] && [ $round -lt $max_rounds ]; do
        round=$((round + 1))
        left=$(echo "$secs - $cpu" | bc | cut -d. -f1)
        [ "${left:-0}" -lt 1 ] && left=1
        out=$(mktemp) times=$(mktemp)
        /usr/bin/time -f '%U %S' -o "$times" "$bin_dir/$t" \
            -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
            -max_total_time="$left" -print_final_stats=1 \
            -artifact_prefix="artifacts/$t/" \
            "work-corpus/$t" "corpus/$t" > "$out" 2>&1
        rc=$?
        used=$(tail -1 "$times" | awk '{print $1 + $2}')
        n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | grep -o '[0-9]*$' | tail -1)
        cpu=$(echo "$cpu + ${used:-0}" | bc)
        runs=$((runs + ${n:-0}))
        { echo "== $t round $round: rc $rc, $used s CPU, ${n:-0} runs"; tail -25 "$out"; } >> "$log"
        rm -f "$out" "$times"
        if [ $rc -ne 0 ]; then
            crash=$(ls -t "artifacts/$t" | head -1)
            crash=${crash:-"rc $rc"}
            break
        fi
    done
    line="| $t | $(printf '%.0f' "$cpu") | $runs | $crash |"
    echo "$line" | tee -a "$log"
    table+=$'\n'"$line"
done
echo | tee -a "$log"
echo "$table" | tee -a "$log"
echo "finished $(date -u +%FT%TZ)" | tee -a "$log"
