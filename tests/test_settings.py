"""Config validation: each kind of bad input is named with how to fix it, all at once,
and the Pulumi program then creates nothing."""

from __future__ import annotations

import re

import pytest

from flasklab.app_secrets import SECRET_SETTINGS
from flasklab.settings import RANGES, ConfigError, declared_keys, load_settings
from flasklab.stacks import load_stack, stack_config
from tests.conftest import MOCK_PUBLIC_KEY


def problems_of(**raw) -> list[str]:
    """The problems of a config whose secret settings, if any, were set with --secret."""
    with pytest.raises(ConfigError) as caught:
        load_settings(raw, "test", secret_keys=SECRET_SETTINGS)
    return caught.value.problems


def test_defaults_are_tutorial_001s_server():
    settings = load_settings({}, "dev")
    assert settings.recipe.name == "nginx-gunicorn-systemd"
    assert settings.debian_release == "13"
    assert settings.instance_type == "t2.medium"
    assert settings.server_names == ("practica_flask", "www.practica_flask")
    assert settings.open_ports == (22, 80, 443, 5000)
    assert settings.app.entry == "wsgi:app"
    assert settings.app.socket == "/run/flask_app.sock"


def test_every_declared_key_has_type_description_and_default():
    for key, spec in declared_keys().items():
        assert {"type", "description", "default"} <= spec.keys(), key


def test_every_range_is_the_one_its_description_states():
    """Pulumi.yaml's descriptions say the ranges in words: they are the ones checked."""
    for key, (low, high) in RANGES.items():
        description = declared_keys()[key]["description"]
        stated = re.findall(r"\b(\d+) to (\d+)\b", description)
        assert stated == [(str(low), str(high))], f"{key}: {description!r} should state {low} to {high}"


def test_values_as_pulumi_passes_them_are_accepted():
    """Pulumi hands the program strings, with JSON for lists."""
    settings = load_settings(
        {"openPorts": "[22, 80]", "serverAliases": '["www.a.test"]', "workers": "4"}, "x"
    )
    assert (settings.open_ports, settings.server_aliases, settings.app.workers) == (
        (22, 80),
        ("www.a.test",),
        4,
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"recipe": "nginx-gunicorn"}, "Choose one of: apache-modwsgi, nginx-gunicorn-supervisor, "),
        ({"debianRelease": "11"}, 'Use "13" (trixie, the default) or "12"'),
        ({"amiId": "debian-13"}, "is not an AMI id"),
        ({"instanceType": "medium"}, "is not an EC2 instance type"),
        ({"rootVolumeGiB": 2}, "use 8 to 100"),
        ({"rootVolumeGiB": "big"}, "rootVolumeGiB must be a whole number"),
        ({"serverName": "practica flask"}, "is not a valid server name"),
        ({"serverName": "-bad.example.org"}, "is not a valid server name"),
        ({"serverAliases": ["ok.test", "bad..test"]}, "serverAliases: 'bad..test'"),
        ({"serverAliases": "not a list"}, "serverAliases: 'not a list' is not a valid server name"),
        ({"openPorts": [22, 80, 70000]}, "70000 is not a TCP port"),
        ({"openPorts": [22, 80, 22]}, "repeats a port"),
        ({"sshCidrs": ["10.0.0.1/33"]}, "sshCidrs: '10.0.0.1/33' is not a valid CIDR range"),
        ({"webCidrs": ["10.0.0.1/8"]}, "has host bits set"),
        ({"keyName": "vockey", "sshPublicKey": MOCK_PUBLIC_KEY}, "are both set; use one"),
        ({"sshPublicKey": "-----BEGIN OPENSSH PRIVATE KEY-----"}, "never the private key"),
        ({"appName": "Flask-App"}, "appName: 'Flask-App' must start with a lowercase letter"),
        ({"appRepo": "github.com/x/y"}, "is not a git URL"),
        ({"appRef": "--upload-pack=x"}, "is not a branch, tag or commit name"),
        ({"appEntry": "wsgi.app"}, "is not module:callable"),
        ({"appEntry": "wsgi:app; rm -rf /"}, "is not module:callable"),
        ({"appRequirements": "../etc/passwd"}, "must be a path inside the repository"),
        ({"workers": 0}, "use 1 to 32"),
        ({"threads": 100}, "threads: 100 is out of range; use 1 to 64"),
        ({"pythonEnv": "conda"}, "use venv or pipenv"),
        ({"appStatic": "../static"}, "appStatic: '../static' must be a folder inside the repository"),
        ({"appStaticUrl": "static files"}, "appStaticUrl: 'static files' is not a URL path"),
        ({"appEnv": ["SECRET_KEY=x"]}, "appEnv must be a map of names to values"),
        ({"appEnv": {"SECRET-KEY": "x"}}, "appEnv: 'SECRET-KEY' is not an environment variable name"),
        ({"appEnv": {"PASSWORD": "it's"}}, "appEnv.PASSWORD: the value holds a single quote"),
        ({"appEnv": {"PASSWORD": "a\nb"}}, "appEnv.PASSWORD: the value holds a single quote, a backslash or"),
        ({"serverNmae": "x"}, "serverNmae is not a flasklab setting. Did you mean serverName?"),
        (
            {"appEnv": {"SECRET_KEY": "x"}},
            "flasklab writes SECRET_KEY into the env file itself, from secretKey",
        ),
        ({"database": "mysql"}, "Use none, mariadb (MySQL, tutorial 003) or postgresql"),
        ({"appMigrate": "flask db upgrade\nrm -rf /"}, "appMigrate must be one command line"),
        ({"databasePassword": "Abcdefghijkl1"}, "databasePassword is set but database is none"),
        ({"database": "mariadb", "databasePassword": "short1"}, "use at least 12 characters"),
        ({"secretKey": "it's-a-long-secret"}, "secretKey: the value holds a quote"),
        ({"tls": "https"}, "Use none, self-signed"),
        ({"tls": "self-signed", "openPorts": [22, 80]}, "`pulumi config set --path 'openPorts[2]' 443`"),
        ({"tls": "none", "tlsEmail": "t@school.org"}, "tlsEmail is only used with tls letsencrypt"),
    ],
)
def test_bad_config_is_named_with_its_fix(raw, expected):
    problems = problems_of(**raw)
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_tutorial_names_with_underscores_are_valid():
    settings = load_settings({"serverName": "practica_flask", "serverAliases": ["www.practica_flask"]})
    assert settings.server_name == "practica_flask"


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        load_settings({"debianRelease": "10", "openPorts": [0, 22, 80], "appEntry": "x"}, "ana")
    message = str(caught.value)
    assert message.startswith("flasklab cannot use the config of stack 'ana'; nothing was created:")
    assert len(caught.value.problems) == 3
    assert message.count("\n  - ") == 3


def test_example_stacks_use_only_declared_keys():
    from tests.conftest import EXAMPLE_STACKS

    assert EXAMPLE_STACKS, "stacks/ has example stacks"
    for stack in EXAMPLE_STACKS:
        assert set(stack_config(stack)) <= set(declared_keys())
        load_stack(stack)


def test_missing_stack_file_lists_the_stacks_there():
    with pytest.raises(
        ConfigError, match=r"there is no stack file stacks/Pulumi\.nope\.yaml\. Stacks here: "
    ):
        load_stack("nope")


@pytest.mark.parametrize(
    "bad", [{"serverName": "a b"}, {"openPorts": [99999]}, {"webCidrs": ["everyone"]}, {"typo": "1"}]
)
def test_program_with_bad_config_fails_with_the_message_and_creates_nothing(run_program, bad):
    import pulumi

    with pytest.raises(pulumi.RunError, match="nothing was created"):
        run_program("dev", **bad)
    [attempt] = run_program.runs
    assert attempt.resources == [] and attempt.calls == []


def test_the_settings_page_documents_every_setting_with_its_default():
    from flasklab.settings import PROJECT_DIR

    page = (PROJECT_DIR / "docs" / "settings.md").read_text()
    for key, spec in declared_keys().items():
        default = spec["default"]
        shown = ", ".join(map(str, default)) if isinstance(default, list | dict) else str(default)
        shown = shown.lower() if isinstance(default, bool) else shown  # as YAML and Pulumi write it
        row = f"| `{key}` | {spec['type']} | " + (f"`{shown}`" if shown else "(empty)")
        assert row in page, f"docs/settings.md's table lacks {key} with its default"


def test_a_rejected_env_value_is_never_echoed():
    [problem] = problems_of(appEnv={"DB_PASSWORD": "hunter2'secret"})
    assert "hunter2" not in problem


def test_app_env_as_pulumi_passes_it_keeps_its_order():
    settings = load_settings({"appEnv": '{"B": "2", "A": "x y"}'}, "test")
    assert settings.app.env == (("B", "2"), ("A", "x y"))


LETSENCRYPT = {"tls": "letsencrypt", "tlsEmail": "teacher@school.org", "serverAliases": []}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("practica_flask", "has no dot"),
        ("practica_flask.school.org", "holds an underscore"),
        ("python.iesgn.test", "ends in .test, which is reserved for private use"),
        ("intranet.local", "ends in .local"),
        ("server.lan", "ends in .lan"),
        ("198.51.100.23", "is an IP address, not a domain name"),
        ("ec2-198-51-100-23.eu-west-1.compute.amazonaws.com", "is one of EC2's own host names"),
        ("ip-172-31-5-9.eu-west-1.compute.internal", "ends in .internal"),
    ],
)
def test_letsencrypt_refuses_names_that_cannot_be_public_and_says_why(name, reason):
    [problem] = problems_of(**LETSENCRYPT, serverName=name)
    assert f"tls letsencrypt: {name!r} {reason}" in problem
    assert "never for names that exist only in /etc/hosts" in problem


@pytest.mark.parametrize("email", ["", "teacher", "teacher@school", "a b@school.org"])
def test_letsencrypt_needs_the_teachers_email(email):
    [problem] = problems_of(**{**LETSENCRYPT, "tlsEmail": email}, serverName="flask.school.org")
    assert "tls letsencrypt needs tlsEmail" in problem


def test_letsencrypt_needs_port_80_for_its_challenge():
    [problem] = problems_of(**LETSENCRYPT, serverName="flask.school.org", openPorts=[22, 443])
    assert "needs port 80 open" in problem


def test_letsencrypt_accepts_a_public_domain():
    settings = load_settings({**LETSENCRYPT, "serverName": "flask.school.org"}, "x")
    assert (settings.tls.name, settings.tls_email, settings.https) == (
        "letsencrypt",
        "teacher@school.org",
        True,
    )


def test_secret_settings_in_plain_text_are_refused_and_never_echoed():
    raw = {"database": "postgresql", "databasePassword": "Hunter2-hunter2", "secretKey": "Key-0123456789-abc"}
    with pytest.raises(ConfigError) as caught:
        load_settings(raw, "x")
    message = str(caught.value)
    assert "`pulumi config set --secret databasePassword`" in message
    assert "`pulumi config set --secret secretKey`" in message
    assert "Hunter2" not in message and "Key-0123" not in message
    # Set with --secret, they are accepted, and never shown in the settings' repr.
    settings = load_settings(raw, "x", secret_keys=("databasePassword", "secretKey"))
    assert settings.chosen_secrets.database_password == "Hunter2-hunter2"
    assert "Hunter2" not in repr(settings)


def test_a_secret_setting_in_a_stack_file_is_refused_but_a_one_run_override_is_not(tmp_path, monkeypatch):
    from flasklab import stacks

    (tmp_path / "Pulumi.plain.yaml").write_text(
        "config:\n  flasklab:database: mariadb\n  flasklab:databasePassword: Plain-text-123\n"
    )
    monkeypatch.setattr(stacks, "STACKS_DIR", tmp_path)
    with pytest.raises(ConfigError, match="stored in plain text"):
        stacks.load_stack("plain")
    monkeypatch.undo()
    settings = stacks.load_stack("dev", {"database": "mariadb", "databasePassword": "Chosen-for-a-run"})
    assert settings.chosen_secrets.database_password == "Chosen-for-a-run"
