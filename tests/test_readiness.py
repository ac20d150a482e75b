"""`pulumi up` ends with a server that serves: the stack's own SSH key, the remote command
that waits for first boot, and the HTTP check at the public IP, under Pulumi's mocks."""

from __future__ import annotations

import pytest

from flasklab import readiness
from flasklab.stacks import load_stack
from tests.conftest import (
    FAKE_IP,
    LOCAL_COMMAND,
    MOCK_PRIVATE_KEY,
    MOCK_PUBLIC_KEY,
    MOCK_STATUS_REPORT,
    REMOTE_COMMAND,
    TLS_PRIVATE_KEY,
    run_the_wait,
)
from tests.test_program import INSTANCE, KEY_PAIR, SECRET_SIGNATURE, assert_only_ever_secret

ACADEMY_KEY = "-----BEGIN RSA PRIVATE KEY-----\nlabsuser-mock-key-9Zt\n-----END RSA PRIVATE KEY-----"


def test_without_a_key_the_stack_makes_its_own_ed25519_key_and_keeps_it_secret(run_program):
    run = run_program("dev")
    key = run.one(TLS_PRIVATE_KEY)
    assert key["inputs"] == {"algorithm": "ED25519"}
    assert run.one(KEY_PAIR)["inputs"]["publicKey"] == MOCK_PUBLIC_KEY
    assert run.one(INSTANCE)["inputs"]["keyName"] == "flasklab-dev-key-1234"
    assert run.outputs["sshPrivateKey"] == MOCK_PRIVATE_KEY
    assert "sshPrivateKey" in run.secret_outputs
    assert run.outputs["sshCommand"] == f"ssh -i flasklab-dev.pem admin@{FAKE_IP}"
    assert_only_ever_secret(run, "mock-private-key-7Hq", outputs_too=False)


def remote_command(run) -> dict:
    [wire] = [wire for (type_, _), wire in run.wire_inputs.items() if type_ == REMOTE_COMMAND]
    return wire


def test_the_remote_command_logs_in_as_admin_at_the_public_ip_and_waits_for_first_boot(run_program):
    run = run_program("dev")
    wire = remote_command(run)
    assert wire["connection"][SECRET_SIGNATURE], "the connection, key and all, goes to the engine as a secret"
    connection = wire["connection"]["value"]
    assert (connection["host"], connection["user"]) == (FAKE_IP, "admin")
    assert connection["privateKey"] == MOCK_PRIVATE_KEY
    # SSH is tried while the instance boots, within readyTimeoutMinutes, never forever.
    minutes = load_stack("dev").ready_timeout_minutes
    assert connection["dialErrorLimit"] == minutes * 60 // connection["perDialTimeout"] > 0
    assert wire["create"] == readiness.READY_COMMAND
    # Replaced with the instance: a new instance is a new first boot.
    assert wire["triggers"] == ["flasklab-dev-instance-id"]
    assert run.outputs["firstBootSeconds"] == 61
    assert run.outputs["readiness"] == "ready: first boot took 61 s"


def test_then_the_app_is_checked_at_the_public_ip_by_every_name(run_program):
    run = run_program("dev", readyPath="/health", readyText="ok")
    [(site, expect, timeout)] = run.http_checks
    assert (site.address, site.names, site.https) == (
        FAKE_IP,
        ("practica_flask", "www.practica_flask"),
        False,
    )
    assert (expect.path, expect.page_marker) == ("/health", "ok")
    assert timeout == 120  # SSH saw first boot finish: the app answers at once
    assert run.errors == []


def test_a_self_signed_site_is_checked_over_https_against_the_certificate_the_server_printed(
    run_program, monkeypatch
):
    certificate = "-----BEGIN CERTIFICATE-----\nMIIBmock\n-----END CERTIFICATE-----"
    run_program.status_report = (
        f"flasklab: ready\n--- the site's certificate ---\n{certificate}\n{readiness.STATUS_EXIT_MARKER}0\n"
    )
    run = run_program("dev", tls="self-signed")
    [(site, _, _)] = run.http_checks
    assert site.https and site.verify and site.ca_pem == certificate + "\n"


def test_a_site_that_does_not_answer_fails_pulumi_up_saying_what_to_check(run_program):
    run_program.http_problems = ["http://practica_flask/ did not answer: timed out"]
    run = run_program("dev")
    [error] = run.failed_commands
    assert f"is not served at {FAKE_IP}" in error and "timed out" in error
    assert "the security group opens 22, 80, 443, 5000 to 0.0.0.0/0" in error


def test_a_first_boot_that_failed_fails_pulumi_up_with_the_servers_report(run_program):
    run_program.status_report = (
        "flasklab: first boot FAILED in step 'install the app'\nERROR: No matching distribution for flsk\n"
        f"{readiness.STATUS_EXIT_MARKER}1\n"
    )
    run = run_program("dev")
    [error] = run.failed_commands
    assert "first boot failed on the server" in error and "No matching distribution for flsk" in error
    assert run.http_checks == [], "a server that failed its first boot is not waited for over HTTP"


def test_a_server_ec2_says_is_stopped_is_not_waited_for_and_does_not_fail(run_program):
    run_program.instance_state = ("stopped", "")
    run = run_program("dev")
    assert run.failed_commands == [] and run.http_checks == []
    assert run.outputs["readiness"] == "stopped: not checked (EC2 says the instance is stopped)"


def test_a_server_started_again_since_the_state_was_written_is_waited_for_at_its_new_address(run_program):
    run_program.instance_state = ("running", "203.0.113.9")
    run = run_program("dev")
    [(site, _, _)] = run.http_checks
    assert site.address == "203.0.113.9"


def test_the_wait_runs_with_the_instance_only_and_survives_a_new_address(run_program):
    """Both commands are triggered by the instance's id, and keep what they were made with
    (connection, command, address) unless `class rebuild` makes the server anew."""
    run = run_program("dev")
    for (type_, name), options in run.options.items():
        if type_ in (REMOTE_COMMAND, LOCAL_COMMAND):
            assert run.wire_inputs[(type_, name)]["triggers"] == ["flasklab-dev-instance-id"]
            assert set(options["ignoreChanges"]) >= {"connection", "create", "stdin"} & set(
                run.wire_inputs[(type_, name)]
            ), name
    rebuilt = run_program("dev", env_rebuild="dev")
    assert all(
        options["ignoreChanges"] == []
        for (type_, _), options in rebuilt.options.items()
        if type_ in (REMOTE_COMMAND, LOCAL_COMMAND)
    )


def test_with_an_academy_key_pair_and_no_private_key_the_wait_is_http_only_and_says_so(run_program):
    run = run_program("academy")
    assert run.of_type(REMOTE_COMMAND) == [] and run.of_type(TLS_PRIVATE_KEY) == []
    assert any("cannot log in to the server" in warning for warning in run.warnings)
    [(_, _, timeout)] = run.http_checks
    assert timeout == 20 * 60  # the whole wait, readyTimeoutMinutes
    assert "sshPrivateKey" not in run.outputs


def test_the_academy_private_key_given_as_a_secret_is_used_for_the_wait(run_program):
    run = run_program("academy", secret_keys=("sshPrivateKey",), sshPrivateKey=ACADEMY_KEY)
    connection = remote_command(run)["connection"]
    assert connection[SECRET_SIGNATURE]
    assert connection["value"]["privateKey"] == ACADEMY_KEY + "\n"
    assert_only_ever_secret(run, "labsuser-mock-key-9Zt")


def test_a_private_key_in_plain_text_is_refused_without_echoing_it(run_program):
    import pulumi

    with pytest.raises(pulumi.RunError) as error:
        run_program("academy", sshPrivateKey=ACADEMY_KEY)
    assert "pulumi config set --secret sshPrivateKey" in str(error.value)
    assert "labsuser-mock-key" not in str(error.value)
    assert run_program.runs[-1].resources == []


def test_wait_for_ready_off_creates_no_wait(run_program):
    run = run_program("dev", waitForReady="false")
    assert run.of_type(REMOTE_COMMAND) == [] and run.http_checks == []
    assert "firstBootSeconds" not in run.outputs


@pytest.mark.parametrize("stack", ["ana-bookworm", "t003-supervisor"])
def test_the_ready_outputs_follow_the_instance(run_program, stack):
    settings = load_stack(stack)
    run = run_program(stack)
    [(site, _, _)] = run.http_checks
    assert site.names == settings.server_names and site.address == FAKE_IP
    # Let's Encrypt serves plain HTTP until DNS points at the server.
    assert site.https is (settings.tls.enabled_at_boot == "https")


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("student", "status"), [("", 1), ("ana", 0)])
def test_the_wait_as_pulumi_up_runs_it_fails_a_lone_server_and_reports_a_class_ones(student, status):
    """`python -m flasklab.readiness` in a process of its own, as the local command runs it:
    nothing answers at the address, so the verdict says so; a one-student stack's exit
    status fails `pulumi up`, a class's does not (its outputs must be written)."""
    import dataclasses

    settings = dataclasses.replace(load_stack("dev"), student=student)
    spec = dataclasses.replace(
        readiness.wait_spec(settings, "127.0.0.1", MOCK_STATUS_REPORT),
        timeout_seconds=0,
        http_port=_closed_port(),
    )
    done = run_the_wait(spec)
    assert done.returncode == status, done.stdout + done.stderr
    verdict = readiness.verdict_in(done.stdout)
    assert verdict is not None and not verdict.ready and verdict.first_boot_seconds == 61
    assert verdict.summary.startswith("not served at 127.0.0.1: http://practica_flask/ did not answer")
    assert "the security group opens" in done.stdout


def test_the_wait_asks_ec2_whether_its_instance_runs_and_where(ec2):
    """The real question, against an emulated account (moto)."""
    from tests.conftest import FAKE_AMI, REGION

    [instance] = ec2.run_instances(ImageId=FAKE_AMI, MinCount=1, MaxCount=1)["Instances"]
    state, address = readiness.instance_state(instance["InstanceId"], REGION)
    assert state == "running" and address == ec2.describe_instances()["Reservations"][0]["Instances"][0].get(
        "PublicIpAddress", ""
    )
    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
    assert readiness.instance_state(instance["InstanceId"], REGION)[0] in ("stopping", "stopped")
    assert readiness.instance_state("i-0123456789abcdef0", REGION) == ("", "")
    assert readiness.instance_state(instance["InstanceId"], "") == ("", "")
