"""Bad input is refused with one message per problem, never a traceback and never with a
secret echoed; what is accepted reaches the server exactly."""

from __future__ import annotations

import base64
import gzip
import os
import random
import string

import pytest

from flasklab.__main__ import main
from flasklab.app_secrets import SECRET_SETTINGS
from flasklab.compose import generate_locally
from flasklab.render import USER_DATA_LIMIT, encode_for_ec2, render_files, size_problems
from flasklab.settings import ConfigError, load_settings
from flasklab.stacks import load_stack
from tests import config_tools
from tests.conftest import secrets_for_tests
from tests.property_checks import sh_words


def problems_of(**raw) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(raw, "test", secret_keys=(*SECRET_SETTINGS, "sshPrivateKey"))
    return caught.value.problems


@pytest.fixture
def stack_file(tmp_path, monkeypatch):
    """stack_file(bytes) -> the problems of a stack file with that content."""
    from flasklab import stacks

    monkeypatch.setattr(stacks, "STACKS_DIR", tmp_path)

    def load(content: bytes) -> list[str]:
        (tmp_path / "Pulumi.bad.yaml").write_bytes(content)
        with pytest.raises(ConfigError) as caught:
            stacks.load_stack("bad")
        return caught.value.problems

    return load


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"- flasklab:recipe: apache-modwsgi\n", "must be a map holding a config: map"),
        (b"just some text\n", "must be a map holding a config: map"),
        (b"config:\n  - flasklab:recipe\n", "must be a map holding a config: map"),
        (b"config:\n\tflasklab:recipe: apache-modwsgi\n", "cannot be read as YAML (line 2, column 1)"),
        (b"config:\n  flasklab:serverName: caf\xe9\n", "is not UTF-8 text"),
        (b"config:\n  flasklab:recipe: !!python/object/apply:os.system [reboot]\n", "cannot be read as YAML"),
    ],
)
def test_a_stack_file_yaml_cannot_read_is_refused_with_what_to_do(stack_file, content, expected):
    [problem] = stack_file(content)
    assert expected in problem


def test_a_key_without_namespace_is_the_projects_so_a_typo_is_named(stack_file):
    [problem] = stack_file(b"config:\n  recipie: apache-modwsgi\n")
    assert "recipie is not a flasklab setting. Did you mean recipe?" in problem


@pytest.mark.parametrize(
    ("content", "key"),
    [(b"config:\n  flasklab:appRef: 1.10\n", "appRef"), (b"config:\n  flasklab:appRef: on\n", "appRef")],
)
def test_a_text_setting_yaml_reads_as_a_number_or_a_boolean_is_refused(stack_file, content, key):
    [problem] = stack_file(content)
    assert f"{key}: YAML reads this value as" in problem and "put it in quotes" in problem


def test_a_setting_left_empty_is_refused_rather_than_taken_as_the_default(stack_file):
    [problem] = stack_file(b"config:\n  flasklab:recipe: null\n")
    assert "recipe is empty (null in the stack file)" in problem


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("serverName=`reboot`", "serverName: '`reboot`' is not a valid server name"),
        ("serverName=[a", "serverName: '[a' is not a valid server name"),
        ("appRef=1.10", None),
        ("databasePassword=@Hunter2-secret-99", "databasePassword is set but database is none"),
    ],
)
def test_set_values_are_text_as_written_and_never_a_traceback(capsys, setting, expected):
    code = main(["render", "--stack", "dev", "--set", setting])
    captured = capsys.readouterr()
    if expected is None:
        assert code == 0 and "checkout --quiet 1.10" not in captured.out  # the sample app: no checkout
    else:
        assert code == 2 and expected in captured.err
    assert "Traceback" not in captured.err and "Hunter2" not in captured.err + captured.out


def test_set_keeps_a_version_like_ref_exactly(capsys):
    assert (
        main(
            [
                "render",
                "--stack",
                "dev",
                "--set",
                "appRepo=https://example.org/app.git",
                "--set",
                "appRef=1.10",
            ]
        )
        == 0
    )
    assert "checkout --quiet 1.10\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    "raw",
    [
        {"serverName": "practica.org\n"},
        {"serverAliases": ["www.practica\u2028.org"]},
        {"appName": "flask_app\n"},
        {"appEnv": {"ID\n": "x"}},
        {"appEnv": {"GREETING": "hola\u2028id"}},
        {"serverName": "practica\u2029.org"},
        {"appMigrate": "flask db upgrade\u0085reboot"},
        {"course": "daw\u2028x"},
    ],
)
def test_line_breaks_of_any_kind_are_refused(raw):
    assert problems_of(**raw)


def test_blanks_around_list_items_are_dropped_so_nothing_reaches_the_server():
    assert load_settings({"serverAliases": ["www.practica.org\n"]}).server_aliases == ("www.practica.org",)


@pytest.mark.parametrize("static", [".", "./", ".git", "static/.git", "/etc", "/"])
def test_app_static_cannot_publish_the_app_folder_a_hidden_one_or_the_servers(static):
    problems = problems_of(appStatic=static) if static != "/" else []
    if static == "/":  # an empty folder: no static files at all, nothing published
        assert load_settings({"appStatic": static}).app.static_dir == ""
    else:
        [problem] = problems
        assert "appStatic" in problem


@pytest.mark.parametrize(
    "name",
    ["root", "admin", "debian", "postgres", "mysql", "sudo", "nginx", "www_data", "user", "select", "table"],
)
def test_app_name_cannot_be_a_system_account_the_login_user_or_an_sql_word(name):
    [problem] = problems_of(appName=name)
    assert f"appName: {name!r} is taken on the server" in problem


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"appEntry": "class:app"}, "names a Python keyword"),
        ({"appEntry": "app:import"}, "names a Python keyword"),
        ({"appRepo": "-oProxyCommand=reboot@host:repo"}, "must not start with '-'"),
        ({"appEnv": {"FLASK_SESSION_COOKIE_SECURE": "false"}}, "flasklab writes FLASK_SESSION_COOKIE_SECURE"),
        ({"sshPublicKey": "ssh-dss AAAAB3NzaC1kc3MAAACBAP x"}, "not an OpenSSH public key EC2 imports"),
        ({"sshPublicKey": "ecdsa-sha2-nistp256 AAAAE2VjZHNh x"}, "not an OpenSSH public key EC2 imports"),
    ],
)
def test_shapes_the_server_or_aws_would_reject_later_are_refused_now(raw, expected):
    [problem] = problems_of(**raw)
    assert expected in problem


def test_netmask_style_ranges_reach_aws_as_prefix_lengths():
    settings = load_settings({"sshCidrs": ["10.0.0.0/255.0.0.0"], "webCidrs": ["0.0.0.0/0.0.0.0"]})
    assert (settings.ssh_cidrs, settings.web_cidrs) == (("10.0.0.0/8",), ("0.0.0.0/0",))


def test_rule_descriptions_stay_within_awss_255_characters():
    from flasklab import plan

    cidrs = [f"203.0.{n}.0/24" for n in range(40)]
    settings = load_settings({"webCidrs": cidrs})
    for rule in plan.ingress_rules(settings):
        assert len(rule.description) <= 255
    web = next(rule for rule in plan.ingress_rules(settings) if rule.port == 80)
    assert web.description.startswith("HTTP (web server) from 203.0.0.0/24, ") and web.description.endswith(
        " more"
    )


def test_an_ip_address_as_server_name_gets_an_ip_entry_in_the_self_signed_certificate():
    settings = load_stack("dev", {"serverName": "198.51.100.23", "serverAliases": [], "tls": "self-signed"})
    script = next(
        f for f in render_files(settings, secrets_for_tests(settings)) if f.path.endswith("flasklab-deploy")
    )
    assert '-addext "subjectAltName=IP:198.51.100.23"' in script.content


def test_awss_limit_is_on_the_raw_bytes_before_base64():
    """Compressed user-data whose base64 is over 16 KB but whose bytes are not is accepted."""
    text = "#cloud-config\n# " + base64.b64encode(random.Random(7).randbytes(14_000)).decode() + "\n"
    plain, packed = encode_for_ec2(text)
    assert plain is None and len(packed) > USER_DATA_LIMIT
    assert len(base64.b64decode(packed)) <= USER_DATA_LIMIT
    assert gzip.decompress(base64.b64decode(packed)).decode() == text


def words(count: int) -> str:
    """Text that gzip's level 9 packs about 5 % tighter than its level 1."""
    rng = random.Random(3)
    vocabulary = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(3000)]
    pick = random.Random(5)
    return " ".join(pick.choice(vocabulary) for _ in range(count))


def test_the_size_screen_accepts_what_fits_only_as_sent_and_refuses_what_never_fits():
    """size_problems screens at gzip's fastest level: user-data over the limit there but
    within it as sent is accepted; over it as sent is refused."""
    fits_as_sent = f"#cloud-config\n# {words(4500)}\n"
    raw = fits_as_sent.encode()
    assert len(gzip.compress(raw, compresslevel=1)) > USER_DATA_LIMIT  # the screen alone would refuse
    assert encode_for_ec2(fits_as_sent)[1] is not None
    assert size_problems(fits_as_sent) == []
    too_big = f"#cloud-config\n# {words(6000)}\n"
    [problem] = size_problems(too_big)
    assert "over AWS's 16 KB limit even compressed" in problem


def test_user_data_over_the_limit_is_refused_before_any_resource(run_program):
    import pulumi

    big = {f"BLOB_{n}": base64.b64encode(os.urandom(600)).decode() for n in range(40)}
    with pytest.raises(pulumi.RunError, match="over AWS's 16 KB limit even compressed"):
        run_program("dev", appEnv=big)
    assert run_program.runs[-1].resources == [] and run_program.runs[-1].calls == []


# Found by the property tests (tests/test_properties.py).


@pytest.mark.parametrize(("key", "most"), [("course", 256), ("keyName", 255)])
def test_free_text_longer_than_aws_takes_is_refused(key, most):
    assert load_settings({key: "x" * most}, "test")
    [problem] = problems_of(**{key: "x" * (most + 1)})
    assert f"{key} is {most + 1} characters; AWS takes at most {most}" in problem


def test_a_roster_name_too_long_for_the_file_system_is_refused_not_a_traceback():
    from flasklab.roster import load_servers

    with pytest.raises(ConfigError, match="roster: there is no file"):
        load_servers({"roster": "r" * 300}, "test")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"appRepo": "https://\0example.org/app.git"},
            "appRepo: 'https://\\x00example.org/app.git' is not a git URL",
        ),
        ({"appRepo": "https://example.org/a\x1bpp.git"}, "is not a git URL"),
        ({"sshPublicKey": "ssh-ed25519 AAAAC3Nz profe\0aula"}, "not an OpenSSH public key EC2 imports"),
        (
            {
                "tls": "letsencrypt",
                "serverName": "flask.example.org",
                "serverAliases": [],
                "tlsEmail": "a\0b@example.org",
            },
            "tls letsencrypt needs tlsEmail",
        ),
    ],
)
def test_control_characters_sh_would_drop_or_aws_refuse_are_refused(raw, expected):
    """sh (dash) drops a NUL as it reads a script: 'a\\0b@x.org' would reach certbot as ab@x.org."""
    [problem] = problems_of(**raw)
    assert expected in problem


@config_tools.needs_checkers
def test_values_with_dollars_and_backticks_pass_shellcheck_and_read_back_exactly(tmp_path):
    """shellcheck warned (SC2016) of a single-quoted readyText like '$5 `menu`', failing
    the deploy script's check; such values are now double-quoted with escapes."""
    text, repo = 'Precio: $5 `menú` "hoy"', "https://example.org/t$x`y`.git"
    settings = load_stack("dev", {"readyText": text, "appRepo": repo, "appMigrate": "echo $HOME `id`"})
    files = render_files(settings, secrets_for_tests(settings))
    script = next(f for f in files if f.path.endswith("flasklab-deploy"))
    assert config_tools.shell_check(script, tmp_path, settings.debian_codename) == ""
    grep = next(line for line in script.content.splitlines() if "grep --quiet" in line)
    clone = next(line for line in script.content.splitlines() if "git clone" in line)
    assert (sh_words(grep)[-1], sh_words(clone)[-2]) == (text, repo)


def test_user_data_the_real_secrets_tip_over_the_limit_stops_with_the_message():
    """Should the size check before any resource pass and the real render not fit, the
    error names the server and says what to do: a RunError, which `pulumi up` prints
    without a traceback."""
    import pulumi

    from components.student_deployment import _user_data_for_ec2

    big = {f"BLOB_{n}": base64.b64encode(os.urandom(600)).decode() for n in range(40)}
    settings = load_settings({"appEnv": big}, "dev")
    with pytest.raises(pulumi.RunError, match=r"flasklab-dev: the user-data is .* Deploy the app from a git"):
        _user_data_for_ec2(settings, generate_locally(settings))
