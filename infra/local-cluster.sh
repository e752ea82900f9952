#!/usr/bin/env bash
# A whole cluster on loopback: PostgreSQL (coordinator) + SeaweedFS (S3) + 2 ingest + 2 query
# + 1 compactor, each its own `strata` process. Logs of everything in DIR/logs.
#   infra/local-cluster.sh start [DIR]    (default DIR: ./local-cluster)
#   infra/local-cluster.sh stop [DIR]
# Clients bootstrap on any node, e.g. 127.0.0.1:18101. Auth is off (STRATA_AUTH=on with
# STRATA_AUTH_AT_REST_KEY and STRATA_AUTH_ADMIN_* set turns it on; docs/tenancy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?start|stop}
dir=$(realpath -m "${2:-local-cluster}")
bin=${STRATA_BIN:-$PWD/target/debug/strata}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-strata} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-strata-secret}
export AWS_REGION=${AWS_REGION:-us-east-1}
export STRATA_AUTH=${STRATA_AUTH:-off}
pg_port=${STRATA_PG_PORT:-55433}
s3_port=${STRATA_S3_PORT:-8334}
nodes=("ingest-1 ingest 18101 18201" "ingest-2 ingest 18102 18202" "query-1 query 18111 18211"
       "query-2 query 18112 18212" "compactor-1 compactor 18121 18221")

case "$cmd" in
  start)
    mkdir -p "$dir/logs" "$dir/pids"
    [ -x "$bin" ] || cargo build --bins
    pg_url=$(infra/postgres.sh start "$dir/postgres" "$pg_port")
    s3_url=$(infra/s3-server.sh start "$dir/s3" strata "$s3_port")
    ln -sf "$dir/postgres/postgres.log" "$dir/logs/postgres.log"
    ln -sf "$dir/s3/weed.log" "$dir/logs/seaweedfs.log"
    for n in "${nodes[@]}"; do
      read -r name role port http_port <<<"$n"
      if [ -f "$dir/pids/$name.pid" ] && kill -0 "$(cat "$dir/pids/$name.pid")" 2>/dev/null; then continue; fi
      AWS_ENDPOINT="$s3_url" nohup "$bin" "$role" --node-id "$name" --coordinator "$pg_url" \
        --store s3://strata/local-cluster --grpc-listen "127.0.0.1:$port" --advertise "127.0.0.1:$port" \
        --http-listen "127.0.0.1:$http_port" --data-dir "$dir/nodes/$name" > "$dir/logs/$name.log" 2>&1 &
      echo $! > "$dir/pids/$name.pid"
    done
    for n in "${nodes[@]}"; do
      read -r name _ port _ <<<"$n"
      for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        kill -0 "$(cat "$dir/pids/$name.pid")" 2>/dev/null || { echo "$name exited; see $dir/logs/$name.log" >&2; exit 1; }
        sleep 0.2
      done
    done
    echo "cluster up: coordinator $pg_url, store $s3_url/strata/local-cluster"
    echo "endpoints: ingest 127.0.0.1:18101,18102  query 127.0.0.1:18111,18112  compactor 127.0.0.1:18121"
    echo "create topics with: $bin topic create NAME --endpoint http://127.0.0.1:18101 (auto-creation is off in a cluster)"
    echo "metrics: http://127.0.0.1:18201/metrics (ingest-1; each node's gRPC port + 100)"
    echo "logs: $dir/logs"
    ;;
  stop)
    for f in "$dir"/pids/*.pid; do
      [ -f "$f" ] || continue
      kill "$(cat "$f")" 2>/dev/null || true
    done
    for f in "$dir"/pids/*.pid; do
      [ -f "$f" ] || continue
      for _ in $(seq 1 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.2; done
      rm -f "$f"
    done
    infra/s3-server.sh stop "$dir/s3"
    infra/postgres.sh stop "$dir/postgres"
    echo "cluster stopped (data kept in $dir)"
    ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
