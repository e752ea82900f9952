#!/usr/bin/env bash
# Installs what the end-to-end tests need, from the package registries, inside the repo:
#   .venv/            Python venv: the official RocketMQ 5.x Python client and pytest
#   tests/node/node_modules/   the official RocketMQ 5.x Node.js client (pinned in package-lock.json)
# Idempotent: a second run only checks versions.
set -euo pipefail
cd "$(dirname "$0")/.."

PY_CLIENT="rocketmq-python-client==5.1.2"
PYTEST="pytest==8.3.4"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import importlib.metadata as m, sys; sys.exit(0 if m.version("rocketmq-python-client")=="5.1.2" and m.version("pytest")=="8.3.4" else 1)' 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check "$PY_CLIENT" "$PYTEST"
fi

if [ ! -f tests/node/node_modules/rocketmq-client-nodejs/package.json ]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "test dependencies ready: $(.venv/bin/python -c 'import importlib.metadata as m; print("python client", m.version("rocketmq-python-client"))'), node client $(node -p 'require("./tests/node/node_modules/rocketmq-client-nodejs/package.json").version')"
