"""scripts/setup.sh runs on a teacher's own machine: it installs only what the rehearsal
needs and never touches the machine's services (a teacher's nginx stays as it is). The
config checkers are not installed on the machine: they run in a cached image of each
stack's own Debian release, so a Debian 13 stack is checked by Debian 13's tools."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from flasklab.render import RenderedFile
from flasklab.settings import DEBIAN_RELEASES, PROJECT_DIR
from flasklab.stacks import load_stack
from tests import config_tools

SETUP = PROJECT_DIR / "scripts" / "setup.sh"
# Everything setup may install with apt: the virtualenv's Python and git, downloads,
# the tests' certificates, and building, booting and networking the rehearsal's
# containers. The config checkers run inside cached Debian images, never on the machine.
ALLOWED_PACKAGES = {
    *("python3", "python3-venv", "python3-pip", "git", "curl", "ca-certificates", "openssl"),
    *("debootstrap", "systemd-container", "iproute2", "slirp4netns"),
    # ssh: the tests log in to rehearsed servers as `pulumi up` logs in to EC2's.
    "openssh-client",
    # pebble: Let's Encrypt's test server, for the rehearsal of a `tls: letsencrypt` stack.
    "pebble",
}
# Commands that start, stop, enable or disable services.
SERVICE_COMMANDS = {"systemctl", "service", "update-rc.d", "invoke-rc.d", "deb-systemd-invoke", "telinit"}
# Words that may precede a command.
SHELL_KEYWORDS = {"if", "then", "else", "elif", "while", "until", "do", "!", "{", "time", "exec"}


def commands_of(text: str) -> list[list[str]]:
    """The script's simple commands as words, comments dropped; `sh -c '...'` and
    `$(...)` bodies are read as commands too."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if set(token) <= set(";&|()"):
                while words and words[0] in SHELL_KEYWORDS:
                    words.pop(0)
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(token)
    for words in list(commands):
        for word in words[1:]:
            if re.search(r"\s", word):
                commands += commands_of(word.replace("$(", " ( "))
    return commands


def scripts_run_by(script: Path, seen: list[Path] | None = None) -> list[Path]:
    """The script and every script of this repository it runs, recursively."""
    seen = seen if seen is not None else []
    if script in seen:
        return seen
    seen.append(script)
    for words in commands_of(script.read_text()):
        for word in words:
            candidate = (PROJECT_DIR / word).resolve()
            if candidate.is_file() and PROJECT_DIR in candidate.parents and candidate.suffix == ".sh":
                scripts_run_by(candidate, seen)
    return seen


def setup_commands(scripts: list[Path] | None = None) -> list[list[str]]:
    return [words for script in scripts or scripts_run_by(SETUP) for words in commands_of(script.read_text())]


def program_of(words: list[str]) -> tuple[str, list[str]]:
    """(the program a command runs, its arguments), past sudo, env and assignments."""
    rest = list(words)
    while len(rest) > 1 and (rest[0] in ("sudo", "env", "nice", "nohup") or re.match(r"\w+=", rest[0])):
        rest.pop(0)
    return Path(rest[0]).name, rest[1:]


def service_problems(commands: list[list[str]]) -> list[str]:
    problems = []
    for words in commands:
        text = shlex.join(words)
        names = {Path(word).name for word in words} | set(re.findall(r"[\w.-]+", text))
        if names & SERVICE_COMMANDS:
            problems.append(f"touches services: {text}")
        if "/etc/cloud" in text:
            problems.append(f"touches this machine's cloud-init: {text}")
        if "sudo" in {Path(word).name for word in words[:2]}:
            problems.append(f"needs sudo (setup runs as root, on machines without sudo): {text}")
    return problems


def apt_installs(commands: list[list[str]]) -> list[list[str]]:
    """The arguments of each apt-get/apt/aptitude install."""
    runs = [program_of(words) for words in commands]
    return [
        arguments
        for program, arguments in runs
        if program in ("apt-get", "apt", "aptitude") and "install" in arguments
    ]


def test_commands_are_read_from_the_script():
    commands = commands_of(
        "set -e  # systemctl in a comment\n"
        "apt-get install -y \\\n    a b && echo done; systemctl stop nginx\n"
        "sh -c 'service nginx stop'\n"
    )
    assert commands[:4] == [
        ["set", "-e"],
        ["apt-get", "install", "-y", "a", "b"],
        ["echo", "done"],
        ["systemctl", "stop", "nginx"],
    ]
    assert ["service", "nginx", "stop"] in commands
    assert len(service_problems(commands)) == 3  # systemctl, sh -c, and service inside it
    assert apt_installs(commands_of("sudo DEBIAN_FRONTEND=noninteractive apt-get install -y nginx")) == [
        ["install", "-y", "nginx"]
    ]


def test_setup_never_touches_services_or_cloud_init():
    scripts = scripts_run_by(SETUP)
    commands = setup_commands(scripts)
    assert len(commands) > 5, [script.name for script in scripts]
    assert service_problems(commands) == []


def test_setup_installs_only_what_the_rehearsal_needs():
    installs = apt_installs(setup_commands())
    assert installs, "setup installs its packages with apt-get install"
    for words in installs:
        assert "--no-install-recommends" in words, shlex.join(words)
    packages = {word for words in installs for word in words[words.index("install") + 1 :]}
    packages = {word for word in packages if not word.startswith("-")}
    assert packages == ALLOWED_PACKAGES, (
        f"not allowed: {sorted(packages - ALLOWED_PACKAGES)}; missing: {sorted(ALLOWED_PACKAGES - packages)}"
    )
    for words in setup_commands():
        program, arguments = program_of(words)
        assert program != "dpkg" or not {"-i", "--install"} & set(arguments), shlex.join(words)


@config_tools.needs_checkers
@pytest.mark.parametrize(("release", "codename"), sorted(DEBIAN_RELEASES.items()))
def test_each_release_is_checked_by_its_own_tools(release, codename, tmp_path):
    command = ["sh", "-c", "cat /etc/debian_version && nginx -v && apache2 -v && python3 --version"]
    result = config_tools.in_checkers_image(command, tmp_path, codename)
    assert result.returncode == 0, result.stderr
    debian_version = result.stdout.splitlines()[0]
    assert debian_version.split(".")[0] == release, f"{codename} checked on Debian {debian_version}"
    print(
        f"Debian {debian_version}: {' | '.join(result.stdout.splitlines()[1:] + result.stderr.splitlines())}"
    )


@config_tools.needs_checkers
def test_a_debian_13_stack_gets_debian_13s_python_and_a_debian_12_stack_debian_12s(tmp_path):
    """Syntax new in Python 3.12: Debian 13's Python (3.13) compiles it, Debian 12's
    (3.11) rejects it, whichever Python runs the tests."""
    source = RenderedFile(
        "/var/www/app/aliases.py", "type Pair = tuple[int, int]\n", "0644", checker="python"
    )
    by_stack = {}
    for stack in ("dev", "ana-bookworm"):
        settings = load_stack(stack)
        (tmp_path / stack).mkdir()
        by_stack[settings.debian_codename] = config_tools.python_compile(
            source, tmp_path / stack, settings.debian_codename
        )
    assert by_stack["trixie"] == ""
    assert "SyntaxError" in by_stack["bookworm"]


def test_the_browser_is_installed_for_the_tests_only():
    """The access sheet's test needs chromium; a teacher's rehearsal does not."""
    test_script = [PROJECT_DIR / "scripts" / "test.sh"]
    tests_install = {word for words in apt_installs(setup_commands(test_script)) for word in words}
    assert "chromium" in tests_install
    assert "chromium" not in {word for words in apt_installs(setup_commands()) for word in words}


def test_pulumis_virtualenv_gets_every_package_flasklab_imports():
    """`pulumi up` installs requirements.txt into .venv/, and a teacher runs the class
    commands from there too: it must hold flasklab's own dependencies and the pulumi extra,
    and flasklab itself (`-e .`) for the `flasklab` command."""
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]
    wanted = {*project["dependencies"], *project["optional-dependencies"]["pulumi"], "-e ."}
    lines = (PROJECT_DIR / "requirements.txt").read_text().splitlines()
    listed = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert wanted == listed, f"missing: {sorted(wanted - listed)}; extra: {sorted(listed - wanted)}"
