"""End-to-end: every example stack's exact user-data booted by real cloud-init under real
systemd in a Debian container, serving the app through the web server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flasklab import plan
from flasklab.rehearsal import report
from flasklab.rehearsal.run import Outcome, Rehearsal
from flasklab.render import render_user_data
from flasklab.settings import PROJECT_DIR
from flasklab.stacks import load_stack
from tests.conftest import EXAMPLE_STACKS, boot_prerequisites_missing

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing()),
]
REPOS_DIR = Path("/var/lib/flasklab/test-repos")


def assert_served(rehearsal: Rehearsal, outcome: Outcome) -> None:
    settings_url = f"http://{rehearsal.target.server_names[0]}/"
    full_report = report.render(rehearsal, outcome, hosts_line="", url=settings_url)
    assert outcome.ok, full_report
    assert outcome.cloud_init_errors == []
    assert outcome.first_response_seconds is not None


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_example_stack_boots_and_serves_every_server_name(rehearsal_of, stack):
    rehearsal = rehearsal_of(load_stack(stack))
    outcome = rehearsal.wait()
    assert_served(rehearsal, outcome)
    assert "<h1>Flask app deployed</h1>" in outcome.first_response


@pytest.mark.parametrize("release", ["12", "13"])
def test_default_stack_boots_on_both_debian_releases(rehearsal_of, release):
    settings = load_stack("dev", {"debianRelease": release})
    rehearsal = rehearsal_of(settings)
    assert_served(rehearsal, rehearsal.wait())
    version = (rehearsal.root / "etc/debian_version").read_text()
    assert version.startswith(release), version
    # The seeded user-data is exactly what `pulumi up` would send.
    seeded = (rehearsal.root / "var/lib/cloud/seed/nocloud/user-data").read_text()
    assert seeded == render_user_data(settings)


def make_app_repo(name: str, requirements: str) -> str:
    """A git repository holding the sample app with the given requirements, as file:// URL."""
    repo = REPOS_DIR / name
    subprocess.run(["rm", "-rf", str(repo)], check=True)
    repo.mkdir(parents=True)
    subprocess.run(["cp", "-r", f"{PROJECT_DIR}/flasklab/sample_app/.", str(repo)], check=True)
    (repo / "requirements.txt").write_text(requirements)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "app"], check=True)
    # Readable by the app's user in the container, as a public repository would be.
    subprocess.run(["chmod", "-R", "a+rX", str(REPOS_DIR)], check=True)
    return f"file://{repo}"


def test_broken_stack_fails_and_the_report_names_the_step_and_its_log(rehearsal_of):
    repo = make_app_repo("broken-requirements", "Flask>=3.1,<4\nflasklab-no-such-package==9.9\n")
    settings = load_stack("dev", {"appRepo": repo})
    rehearsal = rehearsal_of(settings)
    outcome = rehearsal.wait()
    text = report.render(rehearsal, outcome, plan.hosts_line(settings, "127.0.0.1"), plan.url(settings))

    assert not outcome.ok
    assert outcome.cloud_init_errors, "cloud-init itself reports the failure"
    assert "FAILED" in text
    assert "failing step: create the virtual environment /var/www/flask_app/.venv" in text
    assert "flasklab-no-such-package" in text  # pip's own explanation, from the output log
    assert "--- journal of flask_app.service ---" in text


def test_reboot_serves_again_without_repeating_first_boot(rehearsal_of):
    """Tutorial 001 ends by rebooting the server: the app must come back by itself."""
    rehearsal = rehearsal_of(load_stack("dev"))
    assert_served(rehearsal, rehearsal.wait())
    first_boot_steps = report.steps(rehearsal.root)

    outcome = rehearsal.reboot()
    assert_served(rehearsal, outcome)
    assert report.steps(rehearsal.root) == first_boot_steps, "the deploy script ran again"
    boots = (
        subprocess.run(
            ["journalctl", f"--directory={rehearsal.root / 'var/log/journal'}", "--list-boots", "--no-pager"],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()
    )
    assert len(boots) >= 2, boots
