#!/usr/bin/env bash
# Shows what open loop measures and closed loop hides: the embedded reference
# receiver stalls for 200 ms every 5 s, and the same run is measured in
# closed loop and in open loop. The closed-loop p99 stays near the
# receiver's normal latency; the open-loop (corrected) p99 shows the stall.
#
# Usage: bench/stall-demo.sh
# Settings (environment): DURATION (default 30s), RATE (1000 per second),
# CONCURRENCY (50), STALL_FOR (200ms), STALL_EVERY (5s).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-30s}
RATE=${RATE:-1000}
CONCURRENCY=${CONCURRENCY:-50}
STALL_FOR=${STALL_FOR:-200ms}
STALL_EVERY=${STALL_EVERY:-5s}

command -v jq >/dev/null 2>&1 || {
    echo "stall-demo: installing jq with apt-get" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends jq >/dev/null
}
cargo build --release --locked --quiet
MEWSHOOK=$PWD/target/release/mewshook
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

common=(--stall-for "$STALL_FOR" --stall-every "$STALL_EVERY" --duration "$DURATION"
    --concurrency "$CONCURRENCY" --warmup 0s)
CI=1 "$MEWSHOOK" bench "${common[@]}" --json "$WORK/closed.json" >/dev/null
CI=1 "$MEWSHOOK" bench "${common[@]}" --rate "$RATE" --json "$WORK/open.json" >/dev/null

echo "receiver stalls $STALL_FOR every $STALL_EVERY; $CONCURRENCY connections; $DURATION per run"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
printf '%-32s %12s %10s %10s %10s\n' run rate/s p50_ms p99_ms max_ms
jq -r '["closed loop (service latency)", .rate.achieved, .latency.service.p50_ms, .latency.service.p99_ms, .latency.service.max_ms] | @tsv' "$WORK/closed.json" |
    awk -F'\t' '{ printf "%-32s %12.1f %10.3f %10.3f %10.3f\n", $1, $2, $3, $4, $5 }'
jq -r '["open loop (corrected latency)", .rate.achieved, .latency.corrected.p50_ms, .latency.corrected.p99_ms, .latency.corrected.max_ms] | @tsv' "$WORK/open.json" |
    awk -F'\t' '{ printf "%-32s %12.1f %10.3f %10.3f %10.3f\n", $1, $2, $3, $4, $5 }'
jq -r '["open loop (service latency)", .rate.achieved, .latency.service.p50_ms, .latency.service.p99_ms, .latency.service.max_ms] | @tsv' "$WORK/open.json" |
    awk -F'\t' '{ printf "%-32s %12.1f %10.3f %10.3f %10.3f\n", $1, $2, $3, $4, $5 }'
