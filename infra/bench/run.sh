#!/usr/bin/env bash
# Runs a benchmark set of docs/benchmarks.md against a fresh `strata standalone`:
#   infra/bench/run.sh table [STRATA_BIN] [OUT_DIR] [broker flags, e.g. --store s3://bucket/prefix]
#   infra/bench/run.sh sweep [STRATA_BIN] [OUT_DIR] [broker flags]
#   infra/bench/run.sh soak  [STRATA_BIN] [OUT_DIR] [broker flags]
#   infra/bench/run.sh lite  [STRATA_BIN] [OUT_DIR] [broker flags]
# `table`: the runs of the results table (~3 min). `sweep`: 8 producers and 4 consumers paced
# at rising rates (BENCH_RATES, default "200 400 800 1200 1600"), for
#   python3 infra/bench/plot.py docs/benchmarks-latency.svg after=OUT_DIR [before=OTHER_DIR]
# STRATA_BIN defaults to target/release/strata (`cargo build --release`); one JSON file per
# run goes to OUT_DIR (default bench-results/) and a summary line per run is printed.
# `soak`: 16 producers and 4 consumers for BENCH_DURATION (default 10m) while the broker's RSS
# is sampled every 10 s into OUT_DIR/soak-rss.csv; prints its peak and its drift (mean of the
# last third against the middle third). Not a CI step.
set -euo pipefail
cd "$(dirname "$0")/../.."
SET=${1:?table|sweep}
BIN=${2:-target/release/strata}
OUT=${3:-bench-results}
shift $(( $# > 3 ? 3 : $# ))
PORT=${BENCH_PORT:-18181}
DURATION=${BENCH_DURATION:-$([ "$SET" = soak ] && echo 10m || echo 15s)}
mkdir -p "$OUT"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "127.0.0.1:$PORT is in use (another bench broker?); set BENCH_PORT" >&2; exit 1
fi
DATA=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
"$BIN" standalone --data-dir "$DATA" --grpc-listen "127.0.0.1:$PORT" --http-listen 127.0.0.1:0 --remoting-listen off "$@" >"$OUT/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
kill -0 $BROKER || { echo "the broker did not start; see $OUT/broker.log" >&2; exit 1; }

run() {
  local name=$1; shift
  "$BIN" bench --endpoint "127.0.0.1:$PORT" --output json "$@" >"$OUT/$name.json"
  python3 - "$OUT/$name.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for p in r["phases"]:
    s, e = p["send_latency_ms"], p["end_to_end_ms"]
    print(f'{sys.argv[2]:>12} {p["name"]:>18}: sent {p["sent_per_s"]:8.0f}/s p50 {s["p50"]:6.2f} p99 {s["p99"]:7.2f} ms | '
          f'received {p["received_per_s"]:8.0f}/s e2e p50 {e["p50"]:7.2f} p99 {e["p99"]:8.2f} ms | '
          f'tx/1k {p["transactions_per_1k_messages"]:7.1f} writes/1k {p["writes_per_1k_messages"]:7.1f} | '
          f'PUT/1k {p["puts_per_1k_sent"]:6.1f} GET/1k {p["gets_per_1k_received"]:5.1f} | RSS {p["broker_rss_bytes"]/2**20:6.1f} MiB | '
          f'missing {p["missing"]} dup {p["duplicates"]}')
f = r.get("floor")
if f:
    print(f'{"":>12} {"floor":>18}: PUT p50 {f["put_ms"]["p50"]:.2f} p99 {f["put_ms"]["p99"]:.2f} | GET p50 {f["get_ms"]["p50"]:.2f} '
          f'p99 {f["get_ms"]["p99"]:.2f} | commit p50 {f["commit_ms"]["p50"]:.2f} p99 {f["commit_ms"]["p99"]:.2f} ms ({f["object_bytes"]} B objects)')
PY
}

case "$SET" in
  table)
    run p1       --producers 1  --consumers 0 --duration "$DURATION" --floor
    run p64      --producers 64 --consumers 0 --duration "$DURATION" --floor
    run p4c2     --producers 4  --consumers 2 --duration "$DURATION" --floor
    run p16c4    --producers 16 --consumers 4 --duration "$DURATION" --floor
    run drain-c2 --producers 32 --consumers 2 --duration "$DURATION" --drain
    run drain-c4 --producers 32 --consumers 4 --duration "$DURATION" --drain
    ;;
  sweep)
    for rate in ${BENCH_RATES:-200 400 800 1200 1600}; do
      run "rate-$rate" --producers 8 --consumers 4 --rate "$rate" --duration "${BENCH_DURATION:-10s}"
    done
    ;;
  soak)
    echo "seconds,rss_kib" >"$OUT/soak-rss.csv"
    ( start=$SECONDS
      while kill -0 $BROKER 2>/dev/null; do
        echo "$((SECONDS - start)),$(awk '/VmRSS/ {print $2}' /proc/$BROKER/status)" >>"$OUT/soak-rss.csv"
        sleep 10
      done ) &
    SAMPLER=$!
    run soak --producers 16 --consumers 4 --duration "$DURATION"
    kill $SAMPLER
    python3 - "$OUT/soak-rss.csv" <<'PY'
import csv, sys
rows = [(int(r["seconds"]), int(r["rss_kib"]) / 1024) for r in csv.DictReader(open(sys.argv[1])) if r["rss_kib"]]
rss = [m for _, m in rows]
third = max(1, len(rss) // 3)
middle, last = rss[third:2 * third] or rss, rss[-third:]
print(f"RSS over {rows[-1][0]} s ({len(rss)} samples): peak {max(rss):.0f} MiB, middle third mean "
      f"{sum(middle) / len(middle):.0f} MiB, last third mean {sum(last) / len(last):.0f} MiB")
PY
    ;;
  lite)
    # LiteTopic at rising lite-topic counts (BENCH_LITE, default "10000 100000 1000000"), one
    # parent each, on this one broker: create, random sends, subscribed send + receive; then
    # the coordinator rows per lite topic (SQLite in the data dir).
    for n in ${BENCH_LITE:-10000 100000 1000000}; do
      "$BIN" bench --endpoint "127.0.0.1:$PORT" --type lite --lite-topics "$n" --producers 8 --batch 64 \
        --consumers 4 --size 256 --duration "${BENCH_DURATION:-10s}" --output json >"$OUT/lite-$n.json"
      python3 - "$OUT/lite-$n.json" "$DATA/meta/strata.db" "$n" <<'PY'
import json, sqlite3, sys
r, db, n = json.load(open(sys.argv[1])), sqlite3.connect(sys.argv[2]), int(sys.argv[3])
parent = db.execute("SELECT name FROM topics WHERE message_type = 5 ORDER BY created_ms DESC LIMIT 1").fetchone()[0]
rows = {t: db.execute(f"SELECT COUNT(*) FROM {t} WHERE tenant = '' AND {c} >= ? AND {c} < ?",
                      (parent + "+", parent + ",")).fetchone()[0]
        for t, c in [("queues", "topic"), ("batches", "topic"), ("cursors", "topic"), ("inflight", "topic")]}
rows["lite_subscriptions"] = db.execute("SELECT COUNT(*) FROM lite_subscriptions WHERE parent = ?", (parent,)).fetchone()[0]
for p in r["phases"]:
    s = p["seconds"]
    print(f'{n:>8} {p["name"]:>42}: sent {p["sent"] / s:8.0f}/s received {p["received"] / s:8.0f}/s errors {p["send_errors"]} | '
          f'PUTs/request {p["puts_per_request"]:.3f} PUTs/msg {p["puts_per_message"]:.4f} | RSS {p["rss_bytes_after"] / 2**20:6.1f} MiB')
print(f'{n:>8} rows: ' + ", ".join(f"{t} {v}" for t, v in rows.items()) + f' | per lite topic {sum(rows.values()) / n:.2f}')
PY
    done
    ;;
  *) echo "unknown set $SET (table|sweep|soak|lite)" >&2; exit 2 ;;
esac
echo "broker RSS after the runs: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$BROKER/status)"
