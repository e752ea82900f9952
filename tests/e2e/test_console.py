"""The web console end to end in headless Chromium (tests/node/console.js drives Debian's
chromium through playwright-core, with the official Node.js client producing and consuming).
Screenshots are kept in .test-artifacts/console/."""

import os
import shutil
import subprocess
from pathlib import Path

from test_http_api import http_broker  # noqa: F401 (a fixture)
from test_tenancy import ROOT

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / ".test-artifacts" / "console"


def test_console_in_chromium(http_broker):  # noqa: F811
    b = http_broker
    assert shutil.which("chromium"), "Debian's chromium is missing: run infra/install-test-deps.sh"
    shutil.rmtree(SHOTS, ignore_errors=True)
    ak, sk = b.admin_keys
    log = b.log_dir / "console.txt"
    with open(log, "w") as out:
        proc = subprocess.run(
            ["node", "console.js", b.base, b.endpoint, "acme", ak, sk, ROOT[0], ROOT[1], str(SHOTS)],
            cwd=REPO / "tests" / "node", stdout=out, stderr=subprocess.STDOUT, timeout=240,
            env={**os.environ, "CHROMIUM": shutil.which("chromium")})
    text = log.read_text()
    assert proc.returncode == 0 and "CONSOLE OK" in text, text
    assert len(list(SHOTS.glob("*.png"))) >= 10
