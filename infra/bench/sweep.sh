#!/usr/bin/env bash
# Latency against throughput: 8 producers and 4 consumers paced at rising target rates
# against a fresh `strata standalone`; one JSON file per rate in OUT_DIR. Plot them with
#   python3 infra/bench/plot.py docs/benchmarks-latency.svg after=OUT_DIR [before=OTHER_DIR]
# Usage: infra/bench/sweep.sh [STRATA_BIN] [OUT_DIR] [RATES...]   (not a CI step)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/release/strata}
OUT=${2:-bench-sweep}
shift $(( $# > 2 ? 2 : $# )) || true
RATES=("${@:-200 400 800 1200 1600}")
read -r -a RATES <<<"${RATES[*]}"
PORT=${BENCH_PORT:-18191}
mkdir -p "$OUT"
DATA=$(mktemp -d "${TMPDIR:-/tmp}/strata-sweep.XXXXXX")
"$BIN" standalone --data-dir "$DATA" --grpc-listen "127.0.0.1:$PORT" >"$OUT/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
for rate in "${RATES[@]}"; do
  "$BIN" bench --endpoint "127.0.0.1:$PORT" --producers 8 --consumers 4 --rate "$rate" \
    --duration "${BENCH_DURATION:-10s}" --output json >"$OUT/rate-$rate.json"
  python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['phases'][0]; \
print(f'rate {sys.argv[2]:>5}: received {p[\"received_per_s\"]:7.0f}/s send p99 {p[\"send_latency_ms\"][\"p99\"]:7.2f} e2e p50 {p[\"end_to_end_ms\"][\"p50\"]:7.2f} p99 {p[\"end_to_end_ms\"][\"p99\"]:8.2f} ms')" \
    "$OUT/rate-$rate.json" "$rate"
done
