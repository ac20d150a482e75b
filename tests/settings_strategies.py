"""Hypothesis strategies for a stack's config: one per setting declared in Pulumi.yaml,
each mixing values a teacher would write, boundary values and hostile text (quotes, $,
backticks, line breaks of every kind, NUL, unicode, long strings, YAML-ish words).

A config variant starts from an example stack's config (so whole recipes, databases
and HTTPS modes are reached) and overrides a few settings with drawn values.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from flasklab.app_secrets import SECRET_SETTINGS
from flasklab.contract import LINE_BREAKS
from flasklab.faults import FAULTS
from flasklab.recipes import DATABASES, RECIPES, STAGES, TLS_MODES
from flasklab.reserved_names import TAKEN_NAMES
from flasklab.rubric_texts import LANGUAGES
from flasklab.stacks import stack_config
from tests.conftest import MOCK_PRIVATE_KEY, MOCK_PUBLIC_KEY, STUDENT_STACKS

# Every secret value drawn starts with this, so an echo of one in a message is found.
SECRET_MARK = "Zq7SecretMark"
SECRET_KEYS = (*SECRET_SETTINGS, "sshPrivateKey")

# Characters that mean something to sh, Nginx, Apache, systemd, INI files or YAML.
_SPECIAL = [*"'\"$`\\;&|<>(){}[]#*?~!%^=:,@ \t", "${HOME}", "$(reboot)", "`id`", "%n", "%%"]
_ODD = [*LINE_BREAKS, "\x1b", "\x7f", "\x01", "é", "ß", "\U0001d509", "\ufeff", "\u200b", "İ", "ǅ"]
# Words YAML or a stack file reads as something else than text.
_YAMLISH = [
    *("on", "off", "yes", "no", "null", "~", "true", "1.10", "0x1F", "1e3", "0o17", ".inf"),
    *("[a", "{a: b}", "- x", ": x", "&a", "*a", "!!python/name:os.system", "%TAG", "---", "..."),
    *("", " ", "'", '"', "#"),
]

hostile_text = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(_SPECIAL + _ODD + list("ab_-./")), max_size=12).map("".join),
    st.sampled_from(_YAMLISH),
    st.text(alphabet=string.ascii_lowercase + "._-", min_size=200, max_size=400),
)


# Hostile pieces, the newline first: hypothesis tries it first, and it is what most
# settings must refuse; then NUL and the quote (what text settings most often let through).
PIECES = list(dict.fromkeys(["\n", "\0", "'", *LINE_BREAKS, *_SPECIAL, *_ODD]))
_piece = st.sampled_from(PIECES)


def spike(value: Any, piece: str, at: int) -> str:
    text = str(value)
    at %= len(text) + 1
    return text[:at] + piece + text[at:]


def spiked(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """A valid value with one hostile piece put in it, or at one of its ends."""
    return st.builds(spike, valid, _piece, st.integers(0, 500))


def _mostly(*valid: Any, extra: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    """The valid values (and `extra`) half the time; else one spiked, or hostile text."""
    good = st.sampled_from(valid) if extra is None else st.one_of(st.sampled_from(valid), extra)
    return st.one_of(good, good, spiked(good), hostile_text)


_label = st.from_regex(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", fullmatch=True)
server_names = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.sampled_from(["practica_flask", "flask.example.org", "198.51.100.23", "a" * 63 + ".org"]),
    # Boundary: the longest names settings.py accepts (253 characters, labels of 63).
    st.integers(1, 4).map(lambda n: ".".join(["b" * 63] * n)[:253].strip(".")),
)
_cidr = st.one_of(
    st.sampled_from(["0.0.0.0/0", "203.0.113.7/32", "10.0.0.0/255.0.0.0", "::/0", "2001:db8::/32"]),
    st.ip_addresses(v=4).map(lambda a: f"{a}/32"),
    st.ip_addresses(v=6).map(lambda a: f"{a}/128"),
)
_ints = st.one_of(st.integers(-5, 200), st.integers(-5, 200).map(str), hostile_text)
_port = st.one_of(st.sampled_from([22, 80, 443, 5000, 8080]), st.integers(0, 70000))
_env_name = st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True)
_env_spiked = spiked(st.sampled_from(["hola", "s3cr3t", "Hej, klassen: $HOME"]))
# Values a teacher writes that quoting must carry (or refuse): a quote, a backslash, $, ...
_env_everyday = st.sampled_from(["it's", "C:\\temp", "$HOME", "`id`", '"q"', "a #b", " x ", "%s", "ß €"])
_env_value = st.one_of(_env_everyday, _env_spiked, st.text(max_size=40), hostile_text, st.integers(0, 9999))
_env_valid_names = st.dictionaries(_env_name, _env_value, min_size=1, max_size=3)
_secret = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "!#$%&()*+,-./:;<=>?@[]^_`{|}~", max_size=30),
    hostile_text,
).map(lambda tail: SECRET_MARK + tail)
_path = st.from_regex(r"[\w-]{1,12}(/[\w.-]{1,12}){0,2}", fullmatch=True)

SETTING_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "roster": _mostly("", "rosters/class-demo.csv"),
    "recipe": _mostly(*RECIPES),
    "debianRelease": _mostly("12", "13", 12, 13),
    "amiId": _mostly("", "ami-0123456789abcdef0", "ami-01234567"),
    "instanceType": _mostly("t2.medium", "t3.micro", "m7g.large"),
    "rootVolumeGiB": _ints,
    "serverName": st.one_of(server_names, server_names, spiked(server_names), hostile_text),
    "serverAliases": st.one_of(
        st.lists(server_names, max_size=3, unique=True),
        st.lists(st.one_of(spiked(server_names), hostile_text), min_size=1, max_size=2),
        hostile_text,
    ),
    "openPorts": st.one_of(
        st.lists(_port, max_size=5, unique=True).map(lambda ports: [22, 80, 443, *ports]),
        st.lists(_port, max_size=5),
        hostile_text,
    ),
    "sshCidrs": st.one_of(st.lists(_cidr, min_size=1, max_size=3), st.lists(hostile_text, max_size=2)),
    "webCidrs": st.one_of(st.lists(_cidr, min_size=1, max_size=3), st.lists(hostile_text, max_size=2)),
    "keyName": _mostly("", "vockey", "profe key (2026)"),
    "sshPublicKey": _mostly("", MOCK_PUBLIC_KEY, MOCK_PUBLIC_KEY + " profe@aula"),
    "sshPrivateKey": _mostly("", MOCK_PRIVATE_KEY),
    "waitForReady": _mostly(True, False, "true", "False"),
    "staticAddress": _mostly(False, True, "true", "no"),
    "startLink": _mostly(False, True, "false", "yes"),
    "dnsZone": _mostly(
        "", "class.example.org", "class.example.org/Z0123456789ABCDEFGHIJ", "Z0123ABC", "aula.test"
    ),
    "readyTimeoutMinutes": _ints,
    "course": _mostly("flask-deployment", "DAW 2º", "x" * 300),
    "appName": _mostly(
        "flask_app",
        "a",
        "a" * 31,
        *sorted(TAKEN_NAMES)[:5],
        extra=st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True),
    ),
    "appRepo": _mostly(
        "",
        "https://example.org/teacher/app.git",
        "git@github.com:teacher/app.git",
        "file:///srv/app",
        "https://example.org/a'b$c`d.git?x=1&y=2",
    ),
    "appRef": _mostly("main", "v1.2", "1.10", extra=st.from_regex(r"[\w./-]{1,20}", fullmatch=True)),
    "appEntry": _mostly(
        "wsgi:app",
        "app:create_app()",
        "pkg.mod:application",
        extra=st.from_regex(r"[a-z_]{1,8}:[a-z_]{1,8}", fullmatch=True),
    ),
    "appRequirements": _mostly("requirements.txt", "deploy/req.txt", extra=_path),
    "appStatic": _mostly("static", "", "app/static", "/static/", extra=_path),
    "appStaticUrl": _mostly("/static", "/assets/", extra=_path.map(lambda p: "/" + p)),
    "pythonEnv": _mostly("venv", "pipenv"),
    "workers": _ints,
    "threads": _ints,
    "appMigrate": _mostly("", "flask db upgrade", "sh -c 'echo \"$HOME\" `id`'"),
    "readyPath": _mostly(
        "/", "/health", "/a?b=c&d=%20", extra=st.from_regex(r"/[\w./~-]{0,20}", fullmatch=True)
    ),
    "readyText": _mostly("", "Flask app deployed", "¡Hola! $HOME `id` \"q\" 'x'", "y" * 200),
    "database": _mostly(*DATABASES, "none"),
    "databasePassword": st.one_of(st.just(""), _secret),
    "secretKey": st.one_of(st.just(""), _secret),
    "tls": _mostly(*TLS_MODES),
    "tlsEmail": _mostly("", "teacher@example.org", 'a$b`c"@school.org'),
    "stage": _mostly(*STAGES),
    "language": _mostly(*LANGUAGES),
    "fault": _mostly("", *FAULTS),
    "autoStopIdleMinutes": _ints,
    "stopSchedule": _mostly("", "0 22 * * *", "30 21 * 1-6,9-12 MON-FRI", "0 22 1 * 1", "61 * * * *"),
    "startSchedule": _mostly("", "30 7 * * 1-5", "0 8 * 1-6,9-12 MON-FRI", "0 22 * * *", "0 8 15 * 1"),
    "stopScheduleTimezone": _mostly("Europe/Madrid", "Europe/Stockholm", "UTC", "Mars/Olympus"),
    "stopScheduleRoleArn": _mostly("", "arn:aws:iam::123456789012:role/LabRole"),
    "appEnv": st.one_of(
        _env_valid_names,
        _env_valid_names,
        _env_valid_names,
        st.dictionaries(hostile_text, _env_value, max_size=2),
        hostile_text,
    ),
}


# What makes a setting matter, when it is the one drawn in every example.
COMPANIONS: dict[str, dict[str, Any]] = {
    "tlsEmail": {"tls": "letsencrypt", "serverName": "flask.example.org", "serverAliases": []},
    "databasePassword": {"database": "mariadb"},
    "sshPrivateKey": {"keyName": "vockey", "sshPublicKey": ""},
    "appRef": {"appRepo": "https://example.org/teacher/app.git"},
    "stopScheduleTimezone": {"stopSchedule": "0 22 * * *"},
    "stopScheduleRoleArn": {"stopSchedule": "0 22 * * *"},
    "dnsZone": {"serverName": "flask.class.example.org", "serverAliases": []},
}


@st.composite
def config_variants(draw: st.DrawFn, focus: str | None = None) -> dict[str, Any]:
    """An example stack's config with up to five settings drawn anew (`focus` always)."""
    base = dict(stack_config(draw(st.sampled_from(STUDENT_STACKS))))
    keys = draw(st.lists(st.sampled_from(sorted(SETTING_STRATEGIES)), max_size=5 if focus is None else 2))
    base.update(COMPANIONS.get(focus or "", {}))
    for key in dict.fromkeys([*([focus] if focus else []), *keys]):
        base[key] = draw(SETTING_STRATEGIES[key])
    return base


def focused_variants() -> st.SearchStrategy[dict[str, Any]]:
    """Configs each focused on one setting, drawn among all of them."""
    return st.sampled_from(sorted(SETTING_STRATEGIES)).flatmap(lambda key: config_variants(focus=key))


# A valid value of each text setting (with COMPANIONS), for spiking with one piece.
VALID_TEXT: dict[str, str] = {
    "recipe": "nginx-gunicorn-systemd",
    "amiId": "ami-0123456789abcdef0",
    "instanceType": "t3.micro",
    "serverName": "flask.example.org",
    "keyName": "vockey",
    "sshPublicKey": MOCK_PUBLIC_KEY + " profe@aula",
    "course": "daw",
    "appName": "flask_app",
    "appRepo": "https://example.org/teacher/app.git",
    "appRef": "main",
    "appEntry": "wsgi:app",
    "appRequirements": "requirements.txt",
    "appStatic": "static",
    "appStaticUrl": "/static",
    "appMigrate": "flask db upgrade",
    "readyPath": "/health",
    "readyText": "Flask app deployed",
    "tlsEmail": "teacher@example.org",
    "secretKey": SECRET_MARK + "abcdefgh",
    "databasePassword": SECRET_MARK + "abcdefgh",
}
