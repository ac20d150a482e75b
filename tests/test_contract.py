"""The contract (flasklab/contract.py) holds: the sample app, which runs on the server
without flasklab, keeps the same strings, and what the server gets carries them."""

from __future__ import annotations

import ast
import re
import subprocess

import pytest

from flasklab import contract
from flasklab.render import SAMPLE_APP_DIR, render_files
from flasklab.stacks import load_stack
from tests.conftest import EXAMPLE_STACKS, secrets_for_tests

SAMPLE_APP = SAMPLE_APP_DIR / "application.py"


def sample_app_constants() -> dict[str, str]:
    """The sample app's module-level string constants, read without importing it (it
    needs Flask and SQLAlchemy, which run on the server)."""
    tree = ast.parse(SAMPLE_APP.read_text())
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }


def test_sample_app_writes_the_migration_note_the_probes_look_for():
    assert sample_app_constants()["MIGRATION_NOTE"] == contract.SAMPLE_APP_MIGRATION_NOTE


def test_sample_app_page_and_static_file_are_the_ones_the_probes_expect():
    assert contract.SAMPLE_APP_MARKER in sample_app_constants()["INDEX"]
    assert (SAMPLE_APP_DIR / "static" / contract.SAMPLE_APP_STATIC_FILE).is_file()


def test_sample_app_has_the_migration_command_flasklab_runs():
    command = contract.SAMPLE_APP_MIGRATE.removeprefix("flask ")
    assert f'@app.cli.command("{command}")' in SAMPLE_APP.read_text()


def test_sample_app_database_page_marks_what_the_probes_read():
    source = SAMPLE_APP.read_text()
    assert '<p id="server">' in source and '<p id="count">{len(rows)} rows' in source


def files_of(stack: str) -> dict[str, str]:
    settings = load_stack(stack)
    return {file.path: file.content for file in render_files(settings, secrets_for_tests(settings))}


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_every_site_sends_the_contracts_headers_and_static_expiry(stack):
    sites = {path: text for path, text in files_of(stack).items() if "/sites-available/" in path}
    assert sites
    for path, text in sites.items():
        for name, value in contract.SECURITY_HEADERS.items():
            assert re.search(rf"{name}\s+\"?{value}\"?\s", text), f"{path} lacks {name}: {value}"
        assert (
            f"{contract.STATIC_EXPIRY_DAYS}d;" in text or f"plus {contract.STATIC_EXPIRY_DAYS} days" in text
        )
        if path.endswith(("-https", "-https.conf")):
            assert f'"{contract.HSTS}"' in text, path
            assert ":".join(contract.TLS_CIPHERS) in text, path


@pytest.mark.parametrize("stack", ["dev", "t003-supervisor"])
def test_deploy_scripts_mark_their_steps_as_the_reports_read_them(stack):
    scripts = [
        text
        for path, text in files_of(stack).items()
        if path.startswith("/usr/local/sbin/") and '\nstep "' in text
    ]
    assert scripts
    for script in scripts:
        function = re.search(r"^step\(\) \{\n.*?\n\}\n", script, re.MULTILINE | re.DOTALL)
        assert function, script[:400]
        printed = subprocess.run(
            ["sh", "-c", f"{function.group(0)}step install the app"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert printed == f"\n{contract.STEP_MARKER}install the app\n"
