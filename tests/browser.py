"""A real browser for tests of flasklab's HTML pages (the sheet, grade pages, handouts).

scripts/test.sh installs chromium; without it a test is skipped locally and fails in CI.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    """The browser, which scripts/test.sh installs: missing in CI is a failure."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: scripts/test.sh installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (scripts/test.sh installs it: apt-get install chromium)")
    return found


def in_chromium(page: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--window-size=1200,1600", *arguments, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done
