"""End-to-end, on the default Debian (13, Python 3.13): an app whose requirements must be
built from source, through a package mirror that fails its first connections, serves;
an app pinned to a version that cannot be built for Python 3.13 fails with a note that
names it and the ways out (issue 25)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from flasklab import contract
from flasklab.rehearsal import package_cache
from flasklab.stacks import load_stack
from tests.conftest import boot_prerequisites_missing
from tests.container_tools import login_user, run_inside
from tests.test_rehearsal import assert_served, failure_report, make_app_repo

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing()),
]

# The proxy refuses this many connections: more than one pip run makes against an
# unreachable index (1 + PIP_RETRIES = 6), so only the deploy script's own retry gets
# through.
REFUSED_CONNECTIONS = 8
PROXY_PORT = 3128
PROXY_LOG = "var/log/flasklab-test-flaky-proxy.log"
PROXY_UNIT = "flasklab-test-flaky-proxy.service"


def through_a_flaky_mirror(root: Path) -> None:
    """pip in the container goes through tests/flaky_proxy.py, which refuses its first
    REFUSED_CONNECTIONS connections; pip's wheel cache is emptied, so that what must be
    built is built on this boot."""
    shutil.rmtree(root / package_cache.PIP_CACHE.lstrip("/") / "wheels", ignore_errors=True)
    program = root / "usr/local/lib/flasklab-test/flaky_proxy.py"
    program.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).parent / "flaky_proxy.py", program)
    unit = root / "etc/systemd/system" / PROXY_UNIT
    unit.write_text(
        "[Unit]\n"
        "Description=a package mirror that fails its first connections (flasklab's tests)\n"
        "Before=cloud-final.service\n"
        "[Service]\n"
        f"ExecStart=/usr/bin/python3 /usr/local/lib/flasklab-test/flaky_proxy.py {PROXY_PORT} "
        f"{REFUSED_CONNECTIONS} /{PROXY_LOG}\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / PROXY_UNIT).symlink_to(f"/etc/systemd/system/{PROXY_UNIT}")
    (root / "etc/pip.conf").write_text(f"[global]\nproxy = http://127.0.0.1:{PROXY_PORT}\n")


# An app with a PostgreSQL driver that has no wheel for Linux at all (psycopg2, not
# -binary) and an extension it asks pip to build (greenlet, as if its pin had no wheel for
# Python 3.13; no greenlet pin without one builds on 3.13).
BUILT_REQUIREMENTS = (
    "Flask>=3.1,<4\nSQLAlchemy>=2.0,<3\npsycopg2==2.9.10\ngreenlet==3.1.1\n--no-binary greenlet\n"
)


def test_packages_that_must_be_built_are_built_through_a_flaky_mirror(rehearsal_of):
    repo = make_app_repo("must-be-built", BUILT_REQUIREMENTS)
    settings = load_stack("dev", {"debianRelease": "13", "appRepo": repo, "database": "postgresql"})
    rehearsal = rehearsal_of(settings, before_boot=through_a_flaky_mirror)
    outcome = rehearsal.wait()
    assert_served(rehearsal, outcome)

    # The mirror failed pip's first run; the deploy script tried again and got through.
    connections = (rehearsal.root / PROXY_LOG).read_text().splitlines()
    assert connections[:REFUSED_CONNECTIONS] == ["refused"] * REFUSED_CONNECTIONS
    assert any(line.startswith("tunnelled ") for line in connections[REFUSED_CONNECTIONS:]), connections
    output_log = (rehearsal.root / "var/log/cloud-init-output.log").read_text()
    assert re.search(r"flasklab: a network error \(.+\): trying again in 10 s", output_log)

    # Built here, by this server's compiler: wheels tagged for this very platform.
    venv = settings.app.venv
    site_packages = f"{venv}/lib/python3*/site-packages"
    tags = run_inside(
        rehearsal,
        f"cat {site_packages}/greenlet-*.dist-info/WHEEL {site_packages}/psycopg2-*.dist-info/WHEEL",
    )
    assert tags.stdout.count("Tag: cp313-cp313-linux_x86_64") == 2, tags.stdout + tags.stderr
    # psycopg2 reaches the app's database.
    connect = (
        f"set -a; . {settings.app.env_file}; {venv}/bin/python -c "
        "\"import os, psycopg2; print(psycopg2.connect(os.environ['DATABASE_URL']"
        ".replace('+psycopg', '', 1)).server_version)\""
    )
    connected = run_inside(rehearsal, connect)
    assert connected.returncode == 0 and connected.stdout.strip().isdigit(), connected

    # flasklab-status and the rehearsal's report say what was built.
    status = run_inside(rehearsal, "flasklab-status", user=login_user(rehearsal))
    assert status.returncode == 0, status.stdout + status.stderr
    note = next(line for line in status.stdout.splitlines() if contract.BUILT_FROM_SOURCE in line)
    assert "greenlet" in note and "psycopg2" in note and "Python 3.13" in note, note
    print(note)
    assert note in rehearsal.report(outcome)


def test_a_pin_too_old_for_the_releases_python_fails_with_the_ways_out(rehearsal_of):
    """Tutorial 004's shape: greenlet 3.0.3 (2023) has no wheel for Python 3.13 and does not
    build for it either: the report names it, the Python, and both ways out."""
    repo = make_app_repo("too-old-pin", "Flask>=3.1,<4\ngreenlet==3.0.3\n")
    settings = load_stack("dev", {"debianRelease": "13", "appRepo": repo})
    rehearsal = rehearsal_of(settings)
    text = failure_report(rehearsal, settings)
    status = run_inside(rehearsal, "flasklab-status", user=login_user(rehearsal)).stdout
    for report in (text, status):
        assert "--- notes from first boot ---" in report
        note = next(line for line in report.splitlines() if contract.CANNOT_BUILD in line)
        assert note.startswith("- greenlet cannot be built for Python 3.13"), note
        assert "pin a newer version of greenlet" in note and 'debianRelease: "12"' in note, note
    print(status)
