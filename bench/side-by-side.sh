#!/usr/bin/env bash
# Measures `mewshook bench`, oha and wrk side by side against one nginx
# that responds 204 on 127.0.0.1, with the same body, the same
# concurrency and the same duration, and prints the ratios.
#
# nginx runs on CPU 0 and each load generator on the remaining CPUs, so
# the generators compete with the receiver for nothing but the loopback.
# Each round runs the three tools once, in rotating order; the figures
# compared are the medians over the rounds.
#
# Usage: bench/side-by-side.sh
# Settings (environment): DURATION (default 10s), CONCURRENCY (50),
# ROUNDS (3), EVENTS (10 events in the body), PORT (18080), and
# EXTRA_CLIENTS, a space-separated list of other mewshook clients to
# measure too (hyper, delivery), shown as mewshook-hyper and so on.
#
# Missing tools are installed: nginx, wrk and jq with apt-get, oha with
# `cargo install oha --locked`; mewshook is built in release mode. nginx is
# stopped and the temporary directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-50}
ROUNDS=${ROUNDS:-3}
EVENTS=${EVENTS:-10}
PORT=${PORT:-18080}
EXTRA_CLIENTS=${EXTRA_CLIENTS:-}

log() { echo "side-by-side: $*" >&2; }

install_missing() {
    local missing=()
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    command -v jq >/dev/null 2>&1 || missing+=(jq)
    command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} with apt-get"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ! command -v oha >/dev/null 2>&1; then
        log "installing oha with cargo install oha --locked"
        cargo install oha --locked
    fi
}

install_missing
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
log "building mewshook in release mode"
cargo build --release --locked --quiet
MEWSHOOK=$PWD/target/release/mewshook

CPUS=$(nproc)
if [ "$CPUS" -lt 2 ]; then
    log "needs at least 2 CPUs, one for nginx and one for the load generator; found $CPUS"
    exit 2
fi
RECEIVER_CPU=0
GENERATOR_CPUS="1-$((CPUS - 1))"
GENERATOR_THREADS=$((CPUS - 1))

WORK=$(mktemp -d)
NGINX_PID=""
cleanup() {
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill "$NGINX_PID"
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A General Webhook body with $EVENTS events, the same bytes for all tools.
{
    printf '{"EnterpriseId":"851df8c8-90f2-4c4a-8e01-a4fc46b25178","IntegrationId":"c8bee838-7fb1-4f4e-8fac-ac87008b2f90","Events":['
    for i in $(seq 1 "$EVENTS"); do
        [ "$i" -gt 1 ] && printf ','
        printf '{"Discriminator":"ServiceOrderUpdated","Value":{"Id":"bfee2c44-1f84-4326-a862-%012d"}}' "$i"
    done
    printf ']}'
} >"$WORK/body.json"

cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/client_body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 204; }
    }
}
EOF

cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open("$WORK/body.json", "rb")
wrk.body = file:read("*a")
file:close()
EOF

taskset -c "$RECEIVER_CPU" "$NGINX" -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" &
NGINX_PID=$!
URL="http://127.0.0.1:$PORT/webhooks?Token=side-by-side"
for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if ! kill -0 "$NGINX_PID" 2>/dev/null || ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "nginx did not start on 127.0.0.1:$PORT; its log says:"
    cat "$WORK/error.log" >&2 || true
    exit 3
fi

# Converts wrk's latency text (850.00us, 1.20ms, 1.50s) to milliseconds.
wrk_ms() {
    awk -v value="$1" 'BEGIN {
        if (value ~ /us$/) { sub(/us$/, "", value); print value / 1000 }
        else if (value ~ /ms$/) { sub(/ms$/, "", value); print value + 0 }
        else if (value ~ /m$/) { sub(/m$/, "", value); print value * 60000 }
        else if (value ~ /s$/) { sub(/s$/, "", value); print value * 1000 }
        else { print value }
    }'
}

# Each run prints "<rate per second> <median latency in ms>". Every tool
# gets one thread per generator CPU.
run_mewshook_with() {
    CI=1 taskset -c "$GENERATOR_CPUS" "$MEWSHOOK" bench --threads "$GENERATOR_THREADS" \
        --url "$URL" --body "$WORK/body.json" --concurrency "$CONCURRENCY" \
        --duration "$DURATION" --warmup 0s --client "$1" --json "$WORK/mewshook.json" >/dev/null
    jq -r '"\(.rate.achieved) \(.latency.service.p50_ms)"' "$WORK/mewshook.json"
}
run_mewshook() { run_mewshook_with auto; }
run_mewshook-hyper() { run_mewshook_with hyper; }
run_mewshook-delivery() { run_mewshook_with delivery; }

run_oha() {
    taskset -c "$GENERATOR_CPUS" oha --no-tui --worker-threads "$GENERATOR_THREADS" \
        -z "$DURATION" -c "$CONCURRENCY" -m POST -T application/json -D "$WORK/body.json" \
        --output-format json "$URL" >"$WORK/oha.json"
    jq -r '"\(.summary.requestsPerSec) \(.latencyPercentiles.p50 * 1000)"' "$WORK/oha.json"
}

run_wrk() {
    taskset -c "$GENERATOR_CPUS" wrk -t "$GENERATOR_THREADS" -c "$CONCURRENCY" -d "$DURATION" \
        --latency -s "$WORK/post.lua" "$URL" >"$WORK/wrk.txt"
    local rate p50
    rate=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk.txt")
    p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk.txt")
    echo "$rate $(wrk_ms "$p50")"
}

median() { sort -g | awk '{ values[NR] = $1 } END { print values[int((NR + 1) / 2)] }'; }

TOOLS=(mewshook oha wrk)
for client in $EXTRA_CLIENTS; do
    case $client in
        hyper | delivery) TOOLS+=("mewshook-$client") ;;
        *)
            log "unknown client \"$client\" in EXTRA_CLIENTS; use hyper or delivery"
            exit 2
            ;;
    esac
done
: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
    for offset in $(seq 0 $((${#TOOLS[@]} - 1))); do
        tool=${TOOLS[$(((round - 1 + offset) % ${#TOOLS[@]}))]}
        log "round $round: $tool"
        read -r rate p50 < <("run_$tool")
        echo "$tool $round $rate $p50" >>"$WORK/results"
    done
done

echo "mewshook side by side: nginx 204 on CPU $RECEIVER_CPU, generators on CPUs $GENERATOR_CPUS"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "load: POST of $(wc -c <"$WORK/body.json") bytes ($EVENTS events), $CONCURRENCY connections, $DURATION per run, $ROUNDS rounds"
echo "load average before the runs finished: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-18s %-6s %14s %12s\n' tool round rate/s p50_ms
awk '{ printf "%-18s %-6s %14.1f %12.3f\n", $1, $2, $3, $4 }' "$WORK/results"
echo

declare -A RATE P50
for tool in "${TOOLS[@]}"; do
    RATE[$tool]=$(awk -v t="$tool" '$1 == t { print $3 }' "$WORK/results" | median)
    P50[$tool]=$(awk -v t="$tool" '$1 == t { print $4 }' "$WORK/results" | median)
    printf 'median %-18s rate %12.1f/s  p50 %8.3f ms\n' "$tool" "${RATE[$tool]}" "${P50[$tool]}"
done
echo

# Targets: rate at least oha's and at least 95% of wrk's; median latency
# no more than 10% above each. A median more than 10% below another
# tool's is flagged, because the figures should agree on the same load.
verdict() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { print (v >= lo && v <= hi) ? "met" : "NOT met" }'; }
latency_verdict() {
    awk -v v="$1" 'BEGIN {
        if (v > 1.1) print "NOT met"
        else if (v < 0.9) print "met, more than 10% lower"
        else print "met"
    }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }'; }
r_oha=$(ratio "${RATE[mewshook]}" "${RATE[oha]}")
r_wrk=$(ratio "${RATE[mewshook]}" "${RATE[wrk]}")
l_oha=$(ratio "${P50[mewshook]}" "${P50[oha]}")
l_wrk=$(ratio "${P50[mewshook]}" "${P50[wrk]}")
echo "rate  mewshook/oha $r_oha (target >= 1.00: $(verdict "$r_oha" 1.0 1e9))"
echo "rate  mewshook/wrk $r_wrk (target >= 0.95: $(verdict "$r_wrk" 0.95 1e9))"
echo "p50   mewshook/oha $l_oha (target <= 1.10: $(latency_verdict "$l_oha"))"
echo "p50   mewshook/wrk $l_wrk (target <= 1.10: $(latency_verdict "$l_wrk"))"
for client in $EXTRA_CLIENTS; do
    tool="mewshook-$client"
    echo "rate  $tool/wrk $(ratio "${RATE[$tool]}" "${RATE[wrk]}"), $tool/oha $(ratio "${RATE[$tool]}" "${RATE[oha]}")"
done
