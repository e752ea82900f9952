#!/usr/bin/env bash
# Sends one message over StrataMQ's HTTP API with curl, signed as docs/http-api.md says.
#   STRATA_HTTP=http://127.0.0.1:8082 STRATA_ACCESS_KEY=AK STRATA_SECRET_KEY=SK \
#     docs/examples/http-send.sh TOPIC 'the body' [NAMESPACE]
# Needs bash, curl, openssl and sha256sum; prints the broker's JSON answer.
set -euo pipefail
topic=$1 text=$2 namespace=${3:-}
base=${STRATA_HTTP:-http://127.0.0.1:8082}

body=$(printf '{"messages":[{"body":"%s"}]}' "$text")   # (text without quotes or backslashes)
target="/api/v1/topics/$topic/messages"
date=$(date -u +%Y%m%dT%H%M%SZ)
digest=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
signature=$(printf 'POST\n%s\n%s\n%s\n%s' "$target" "$date" "$namespace" "$digest" \
  | openssl dgst -sha256 -hmac "$STRATA_SECRET_KEY" | sed 's/^.*= //')

curl -sS -X POST "$base$target" \
  -H "content-type: application/json" \
  -H "x-mq-date-time: $date" \
  -H "authorization: STRATA-HMAC-SHA256 Credential=$STRATA_ACCESS_KEY, Signature=$signature" \
  ${namespace:+-H "x-mq-namespace: $namespace"} \
  --data-binary "$body"
echo
