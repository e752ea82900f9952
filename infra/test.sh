#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests, then the end-to-end tests with the
# official RocketMQ clients against `strata standalone`. This is the README's test command
# and all that CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

infra/install-test-deps.sh
# The deployment recipes (Dockerfile, Kubernetes, Terraform): static checks, ~1.5 min of one
# core, run beside the Rust build and awaited before the end-to-end tests.
mkdir -p .test-artifacts
infra/iac/check.sh > .test-artifacts/iac-check.log 2>&1 &
iac_check=$!

# Real services on loopback for the cluster backends: PostgreSQL (coordinator) and SeaweedFS
# (S3). Their data lives in a temporary folder, removed afterwards; logs of failed runs stay
# in .test-artifacts/.
services=$(mktemp -d "${TMPDIR:-/tmp}/strata-test.XXXXXX")
chmod 755 "$services"
export AWS_ACCESS_KEY_ID=strata AWS_SECRET_ACCESS_KEY=strata-secret AWS_REGION=us-east-1
cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    # The services' own complaints, for a failure whose cause is theirs.
    echo "== last errors of SeaweedFS and PostgreSQL (full logs in .test-artifacts/)"
    grep -hiE "error|fatal|panic" "$services"/s3/weed.log "$services"/postgres/postgres.log 2>/dev/null | tail -n 20 || true
  fi
  infra/s3-server.sh stop "$services/s3" || true
  infra/postgres.sh stop "$services/postgres" || true
  mkdir -p .test-artifacts && cp "$services"/postgres/postgres.log "$services"/s3/weed.log .test-artifacts/ 2>/dev/null || true
  rm -rf "$services"
}
trap cleanup EXIT
export STRATA_TEST_POSTGRES_DIR="$services/postgres" STRATA_TEST_S3_DIR="$services/s3"
STRATA_TEST_POSTGRES_URL=$(infra/postgres.sh start "$STRATA_TEST_POSTGRES_DIR" 55440)
STRATA_TEST_S3_ENDPOINT=$(infra/s3-server.sh start "$services/s3" strata 8340)
export STRATA_TEST_POSTGRES_URL STRATA_TEST_S3_ENDPOINT STRATA_TEST_S3_BUCKET=strata
# Tests that need these services fail (instead of skipping) when they are missing (Rust
# tests always do unless STRATA_SKIP_SERVICES=1; pytest skips visibly unless this is set).
export STRATA_REQUIRE_SERVICES=1
export STRATA_TEST_LOGS="$PWD/.test-artifacts/logs"
rm -rf "$STRATA_TEST_LOGS"

# One build profile (dev) and one feature set for everything (`testing`: the e2e tests'
# switches, docs/configuration.md); the e2e tests use the binary built here and never build
# anything themselves.
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets --features testing -- -D warnings
cargo build --locked --bins --features testing
cargo test --locked --workspace --features testing


if wait "$iac_check"; then
  grep -E '^(==|[0-9]+ files valid|terraform:|Passed checks)' .test-artifacts/iac-check.log
else
  cat .test-artifacts/iac-check.log
  echo "the deployment recipes' checks failed (infra/iac/check.sh)" >&2
  exit 1
fi

export STRATA_BIN="$PWD/target/debug/strata"
.venv/bin/python -m pytest tests/e2e -v --durations=15 "$@"
