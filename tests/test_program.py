"""The real Pulumi program (__main__.py) under Pulumi's mocks, for every example stack."""

from __future__ import annotations

import base64
import gzip

import pytest

from flasklab import plan
from flasklab.render import render_user_data
from flasklab.stacks import load_stack
from tests.conftest import FAKE_IP, RANDOM_PASSWORD, STUDENT_STACKS, mock_ami, mock_secrets

INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
KEY_PAIR = "aws:ec2/keyPair:KeyPair"


@pytest.mark.parametrize("stack", STUDENT_STACKS)
def test_instance_is_hardened_debian_with_the_stacks_user_data(run_program, stack):
    settings = load_stack(stack)
    run = run_program(stack)
    instance = run.one(INSTANCE)["inputs"]

    assert instance["instanceType"] == settings.instance_type
    [lookup] = [c for c in run.calls if c["token"] == "aws:ec2/getAmi:getAmi"]
    assert instance["ami"] == mock_ami(lookup["args"])["id"]
    assert user_data_sent(instance) == render_user_data(settings, mock_secrets(stack, settings))
    assert instance["userDataReplaceOnChange"] is True
    assert instance["metadataOptions"]["httpTokens"] == "required"
    assert instance["rootBlockDevice"]["encrypted"] is True
    assert instance["rootBlockDevice"]["volumeSize"] == settings.root_volume_gib
    build = instance["tags"]["flasklab-build"]
    assert len(build) == 12 and instance["tags"]["flasklab-config"] == build
    assert instance["tags"] == {
        "flasklab-build": build,
        "flasklab-config": build,
        "Name": f"flasklab-{stack}",
        "stack": stack,
        "course": settings.course,
        "managed-by": "flasklab",
        "image": f"debian-{settings.debian_release}-x86_64",
        "server-names": " ".join(settings.server_names),
    }
    assert instance["vpcSecurityGroupIds"] == [f"flasklab-{stack}-sg-id"]


@pytest.mark.parametrize("stack", STUDENT_STACKS)
def test_ami_is_the_newest_official_debian_of_the_release(run_program, stack):
    settings = load_stack(stack)
    run = run_program(stack)
    [lookup] = [c for c in run.calls if c["token"] == "aws:ec2/getAmi:getAmi"]
    args = lookup["args"]
    assert args["mostRecent"] is True
    assert args["owners"] == ["136693071363"]
    filters = {f["name"]: f["values"] for f in args["filters"]}
    assert filters["name"] == [f"debian-{settings.debian_release}-amd64-*"]
    assert filters["architecture"] == ["x86_64"]


def test_explicit_ami_skips_the_lookup(run_program):
    run = run_program("dev", amiId="ami-0123456789abcdef0")
    assert run.one(INSTANCE)["inputs"]["ami"] == "ami-0123456789abcdef0"
    assert not [c for c in run.calls if c["token"] == "aws:ec2/getAmi:getAmi"]


def test_graviton_instance_type_looks_up_arm64_debian(run_program):
    run = run_program("dev", instanceType="t4g.small", debianRelease="12")
    [lookup] = [c for c in run.calls if c["token"] == "aws:ec2/getAmi:getAmi"]
    filters = {f["name"]: f["values"] for f in lookup["args"]["filters"]}
    assert filters == {
        "name": ["debian-12-arm64-*"],
        "architecture": ["arm64"],
        "virtualization-type": ["hvm"],
        "root-device-type": ["ebs"],
    }


@pytest.mark.parametrize("stack", STUDENT_STACKS)
def test_security_group_has_one_described_rule_per_open_port(run_program, stack):
    settings = load_stack(stack)
    group = run_program(stack).one(SECURITY_GROUP)["inputs"]
    rules = {rule["fromPort"]: rule for rule in group["ingress"]}
    assert sorted(rules) == sorted(settings.open_ports)
    for port, rule in rules.items():
        assert rule["toPort"] == port
        assert rule["protocol"] == "tcp"
        assert rule["description"]
        expected = settings.ssh_cidrs if port == 22 else settings.web_cidrs
        assert rule["cidrBlocks"] == list(expected)


def test_default_stack_opens_tutorial_001s_ports_to_everyone(run_program):
    group = run_program("dev").one(SECURITY_GROUP)["inputs"]
    assert [(r["fromPort"], r["cidrBlocks"]) for r in group["ingress"]] == [
        (22, ["0.0.0.0/0"]),
        (80, ["0.0.0.0/0"]),
        (443, ["0.0.0.0/0"]),
        (5000, ["0.0.0.0/0"]),
    ]
    assert [r["description"] for r in group["ingress"]] == [
        "SSH from 0.0.0.0/0",
        "HTTP (web server) from 0.0.0.0/0",
        "HTTPS (web server) from 0.0.0.0/0",
        "Flask development server (tutorial 001) from 0.0.0.0/0",
    ]


def test_ssh_and_web_sources_are_separate_and_ipv6_goes_to_ipv6_blocks(run_program):
    group = run_program(
        "dev", openPorts=[22, 80], sshCidrs=["203.0.113.7/32"], webCidrs=["0.0.0.0/0", "::/0"]
    ).one(SECURITY_GROUP)["inputs"]
    ssh, http = group["ingress"]
    assert (ssh["cidrBlocks"], ssh.get("ipv6CidrBlocks", [])) == (["203.0.113.7/32"], [])
    assert (http["cidrBlocks"], http["ipv6CidrBlocks"]) == (["0.0.0.0/0"], ["::/0"])


def test_public_key_creates_a_key_pair_used_by_the_instance(run_program):
    run = run_program("ana-bookworm")
    key_pair = run.one(KEY_PAIR)
    assert key_pair["inputs"]["publicKey"] == load_stack("ana-bookworm").ssh_public_key
    assert run.one(INSTANCE)["inputs"]["keyName"] == "flasklab-ana-bookworm-key-1234"


def test_existing_key_pair_name_is_used_as_is(run_program):
    run = run_program("academy")
    assert run.of_type(KEY_PAIR) == []
    assert run.one(INSTANCE)["inputs"]["keyName"] == "vockey"


@pytest.mark.parametrize("stack", STUDENT_STACKS)
def test_outputs(run_program, stack):
    settings = load_stack(stack)
    outputs = run_program(stack).outputs
    names = " ".join(settings.server_names)
    assert outputs["hostsLine"] == f"{FAKE_IP} {names}"
    assert outputs["publicIp"] == FAKE_IP
    assert outputs["publicDns"] == f"ec2-{FAKE_IP.replace('.', '-')}.compute.amazonaws.com"
    assert outputs["serverName"] == settings.server_name
    assert outputs["serverNames"] == list(settings.server_names)
    scheme = "https" if settings.tls.name != "none" else "http"
    assert outputs["url"] == f"{scheme}://{settings.server_name}/"
    assert outputs["sshCommand"] == plan.ssh_command(settings, FAKE_IP)
    assert outputs["sshCommand"].endswith(f"admin@{FAKE_IP}")
    assert outputs["instanceId"] == f"flasklab-{stack}-instance-id"


def test_default_stack_hosts_line_is_tutorial_001s(run_program):
    assert run_program("dev").outputs["hostsLine"] == f"{FAKE_IP} practica_flask www.practica_flask"


def test_resources_are_children_of_the_student_server(run_program):
    run = run_program("ana-bookworm")
    assert {r["type"] for r in run.resources} == {
        "flasklab:index:StudentServer",
        SECURITY_GROUP,
        KEY_PAIR,
        INSTANCE,
        "flasklab:index:AppSecretValues",
        RANDOM_PASSWORD,
        "flasklab:index:ServerReadiness",
        "command:local:Command",
    }


@pytest.mark.parametrize(
    ("overrides", "image"),
    [
        ({}, "debian-13-x86_64"),
        ({"debianRelease": "12"}, "debian-12-x86_64"),
        ({"instanceType": "t4g.medium"}, "debian-13-arm64"),
        ({"amiId": "ami-0123456789abcdef0"}, "ami-0123456789abcdef0"),
    ],
)
def test_the_image_the_server_is_built_for_is_its_image_tag(run_program, overrides, image):
    """Each image the teacher asks for (release, architecture, amiId) is the instance's
    `image` tag, kept from creation: another image is a rebuild's (tests/test_term.py)."""
    assert run_program("dev", **overrides).one(INSTANCE)["inputs"]["tags"]["image"] == image


def test_the_architecture_comes_from_aws_not_from_the_type_name(run_program):
    """a1 is a Graviton family whose name has no g: AWS says it runs arm64."""
    run = run_program("dev", instanceType="a1.medium")
    [lookup] = [c for c in run.calls if c["token"] == "aws:ec2/getAmi:getAmi"]
    assert {f["name"]: f["values"] for f in lookup["args"]["filters"]}["architecture"] == ["arm64"]


def test_an_instance_type_the_region_does_not_offer_is_refused_before_any_resource(run_program):
    import pulumi

    run_program.not_offered = {"t2.medium"}  # as in eu-north-1, where t003 runs
    with pytest.raises(pulumi.RunError) as error:
        run_program("t003-supervisor", instanceType="t2.medium")
    assert "instanceType: t2.medium is not offered in" in str(error.value)
    assert "`pulumi config set instanceType t3.medium`" in str(error.value)
    assert run_program.runs[-1].resources == []


SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"  # how the SDK marks a secret value


def plain_occurrences(value, needle: str, path: str = "") -> list[str]:
    """Where `needle` appears in serialized properties outside a secret wrapper."""
    if isinstance(value, dict):
        if value.get(SECRET_SIGNATURE):
            return []
        return [
            hit for key, item in value.items() for hit in plain_occurrences(item, needle, f"{path}.{key}")
        ]
    if isinstance(value, list):
        return [
            hit for i, item in enumerate(value) for hit in plain_occurrences(item, needle, f"{path}[{i}]")
        ]
    return [path] if isinstance(value, str) and needle in value else []


def user_data_sent(instance_inputs: dict) -> str:
    """The user-data text, from userData or (past 16 KB) gzip in userDataBase64."""

    def unwrapped(value):
        return value["value"] if isinstance(value, dict) and SECRET_SIGNATURE in value else value

    return unwrapped(instance_inputs.get("userData")) or gunzip(unwrapped(instance_inputs["userDataBase64"]))


def gunzip(packed: str) -> str:
    return gzip.decompress(base64.b64decode(packed)).decode()


def wire_user_data(run) -> tuple[bool, str]:
    """Whether the user-data went to the engine (and so to the state) as a secret, and its text."""
    [wire] = [wire for (type_, _), wire in run.wire_inputs.items() if type_ == INSTANCE]
    for name, decode in (("userData", str), ("userDataBase64", gunzip)):
        field = wire.get(name)
        if isinstance(field, str) and field:
            return False, decode(field)
        if isinstance(field, dict) and field.get("value"):
            return bool(field.get(SECRET_SIGNATURE)), decode(field["value"])
    raise AssertionError(f"no user-data was sent: {wire}")


def assert_only_ever_secret(run, secret: str, outputs_too: bool = True) -> None:
    """Nothing sent to the engine (what it writes to the state) carries `secret` in plain
    text, and no output shows it (or only secret outputs, when not `outputs_too`)."""
    assert [hit for wire in run.wire_inputs.values() for hit in plain_occurrences(wire, secret)] == []
    shown = [name for name, value in run.outputs.items() if secret in str(value)]
    assert [name for name in shown if outputs_too or name not in run.secret_outputs] == []


def test_secret_app_settings_are_encrypted_in_the_state_and_absent_from_outputs(run_program):
    secret = "s3cret-from-pulumi-config-7Qx"
    run = run_program("t003-supervisor", secret_keys=("appEnv",), appEnv={"API_TOKEN": secret})
    is_secret, user_data = wire_user_data(run)
    # The secret does reach the server, in the env file of the user-data, marked secret...
    assert is_secret
    assert f"API_TOKEN='{secret}'" in user_data
    # ...but is never plain text.
    assert_only_ever_secret(run, secret)


@pytest.mark.parametrize("stack", ["t003-supervisor", "t004-postgres"])
def test_generated_secrets_are_kept_in_the_state_encrypted_and_reach_the_env_file(run_program, stack):
    settings = load_stack(stack)
    run = run_program(stack)
    generated = mock_secrets(stack, settings)
    passwords = [r for r in run.resources if r["type"] == RANDOM_PASSWORD]
    assert sorted(r["name"] for r in passwords) == [
        f"flasklab-{stack}-secrets-database-password",
        f"flasklab-{stack}-secrets-secret-key",
    ]
    for resource in passwords:  # letters and digits: safe in URLs, SQL and the env file
        assert resource["inputs"]["special"] is False
        assert resource["inputs"]["length"] >= 32
    # pulumi-random asks the engine to encrypt what it generates in the state.
    for resource in passwords:
        assert "result" in run.secret_outputs_asked[(RANDOM_PASSWORD, resource["name"])]
    is_secret, user_data = wire_user_data(run)
    assert is_secret
    assert f"SECRET_KEY='{generated.secret_key}'" in user_data
    assert f":{generated.database_password}@localhost:" in user_data
    for secret in (generated.secret_key, generated.database_password):
        assert_only_ever_secret(run, secret)


def test_a_password_set_with_secret_replaces_the_generated_one(run_program):
    chosen = "Chosen-by-the-teacher-42"
    run = run_program("t004-postgres", secret_keys=("databasePassword",), databasePassword=chosen)
    assert [r["name"] for r in run.resources if r["type"] == RANDOM_PASSWORD] == [
        "flasklab-t004-postgres-secrets-secret-key"
    ]
    _, user_data = wire_user_data(run)
    assert f"api:{chosen}@localhost:5432/api" in user_data
    assert f"PASSWORD '{chosen}'" in user_data
    assert_only_ever_secret(run, chosen)


def test_a_secret_setting_in_plain_text_is_refused_without_echoing_it(run_program):
    import pulumi

    chosen = "Plain-text-password-99"
    with pytest.raises(pulumi.RunError) as error:
        run_program("t004-postgres", databasePassword=chosen)
    assert "pulumi config set --secret databasePassword" in str(error.value)
    assert chosen not in str(error.value)
    assert run_program.runs[-1].resources == []


def test_user_data_is_always_secret_since_it_holds_the_secret_key(run_program):
    run = run_program("dev")
    is_secret, user_data = wire_user_data(run)
    assert is_secret
    assert "SECRET_KEY='Mock" in user_data


def test_letsencrypt_stack_says_how_to_get_the_certificate_once_dns_points(run_program):
    outputs = run_program("t003-supervisor").outputs
    assert outputs["url"] == "https://microblog.example.org/"
    assert outputs["httpsCommand"] == (
        f"Once DNS resolves microblog.example.org and www.microblog.example.org to {FAKE_IP} "
        f"(an A record each), the server gets its certificate by itself within minutes; if "
        f"https://microblog.example.org/ does not answer then, run on the server (see sshCommand): "
        f"sudo flasklab-letsencrypt"
    )
    assert "httpsCommand" not in run_program("dev").outputs


@pytest.mark.parametrize(
    ("stack", "command"),
    [
        ("dev", "sudo systemctl restart flask_app"),
        ("t000-apache", "sudo systemctl reload apache2"),
        ("t002-uwsgi", "supervisorctl restart hellopython"),
    ],
)
def test_restart_command_output_fits_the_recipe(run_program, stack, command):
    assert run_program(stack).outputs["restartCommand"] == command
