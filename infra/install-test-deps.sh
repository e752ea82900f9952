#!/usr/bin/env bash
# Installs what the end-to-end tests need, from the package registries, inside the repo:
#   .venv/            Python venv: the official RocketMQ 5.x Python client and pytest
#   .venv4/           Python venv: the 4.x client (PyPI rocketmq, the C++ client library inside);
#                     its own, as both clients' packages are named `rocketmq`
#   .venv-schemathesis/  schemathesis, for the HTTP API's OpenAPI file
#   tests/node/node_modules/   the official RocketMQ 5.x Node.js client and playwright-core
#                              (pinned in package-lock.json)
# Idempotent: a second run only checks versions.
set -euo pipefail
cd "$(dirname "$0")/.."

# The official client, the test runner, and two readers of the Parquet archive.
PY_PACKAGES=("rocketmq-python-client==5.1.2" "pytest==8.3.4" "pyarrow==26.0.1" "duckdb==2.0.1")

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python - "${PY_PACKAGES[@]}" <<'PY' 2>/dev/null; then
import importlib.metadata as m, sys
sys.exit(0 if all(m.version(p.split("==")[0]) == p.split("==")[1] for p in sys.argv[1:]) else 1)
PY
  .venv/bin/pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

# schemathesis (property-based requests against the HTTP API's OpenAPI file), in a venv of its
# own: it needs a newer pytest than the test runner's pin.
if [ ! -x .venv-schemathesis/bin/python ]; then
  python3 -m venv .venv-schemathesis
fi
if ! .venv-schemathesis/bin/python -c 'import importlib.metadata as m, sys; sys.exit(m.version("schemathesis") != "4.32.5")' 2>/dev/null; then
  .venv-schemathesis/bin/pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi

V4_PACKAGE="rocketmq==0.4.4"
if [ ! -x .venv4/bin/python ]; then
  python3 -m venv .venv4
fi
if ! .venv4/bin/python -c 'import importlib.metadata as m, sys; sys.exit(m.version("rocketmq") != "0.4.4")' 2>/dev/null; then
  .venv4/bin/pip install --quiet --disable-pip-version-check "$V4_PACKAGE"
fi

# strace: the durability test observes the broker's fsync calls; openssl: the TLS test makes
# its certificates (and the curl example signs with it); chromium: the console's browser test
# (driven by playwright-core from tests/node).
for tool in strace openssl curl chromium; do
  if ! command -v "$tool" >/dev/null; then
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get install -y -q "$tool" >/dev/null || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "$tool" >/dev/null; }
  fi
done

if [ ! -f tests/node/node_modules/rocketmq-client-nodejs/package.json ] || \
   [ ! -f tests/node/node_modules/playwright-core/package.json ]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "test dependencies ready: $(.venv/bin/python -c 'import importlib.metadata as m; print("python client", m.version("rocketmq-python-client"))'), 4.x client $(.venv4/bin/python -c 'import importlib.metadata as m; print(m.version("rocketmq"))'), node client $(node -p 'require("./tests/node/node_modules/rocketmq-client-nodejs/package.json").version')"
