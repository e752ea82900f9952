#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests, then the end-to-end tests with the
# official RocketMQ clients against `strata standalone`. This is the README's test command
# and all that CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

infra/install-test-deps.sh

# One build profile (dev) for everything; the e2e tests use the binary built here and never
# build anything themselves.
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo build --locked --bins
cargo test --locked --workspace

export STRATA_BIN="$PWD/target/debug/strata"
.venv/bin/python -m pytest tests/e2e -v --durations=10 "$@"
