"""Settings that cannot work are refused before anything is created: ports the readiness
wait needs but openPorts leaves closed, and SSH public keys EC2 would refuse mid-`pulumi up`."""

from __future__ import annotations

import base64
import subprocess

import pytest

from flasklab.network_settings import ssh_public_key_problems
from flasklab.settings import ConfigError, load_settings
from tests.conftest import MOCK_PRIVATE_KEY, MOCK_PUBLIC_KEY


def problems_of(raw: dict, secret_keys: tuple[str, ...] = ()) -> list[str]:
    try:
        load_settings(raw, "test", secret_keys=secret_keys)
    except ConfigError as error:
        return list(error.problems)
    return []


def test_no_port_80_while_the_wait_checks_http_is_refused_saying_what_to_set():
    [problem] = problems_of({"openPorts": [22]})
    assert "openPorts has no 80, but waitForReady checks every server over HTTP" in problem
    assert "`pulumi config set --path 'openPorts[1]' 80`" in problem
    assert "`pulumi config set waitForReady false`" in problem
    assert problems_of({"openPorts": [22], "waitForReady": False}) == []


def test_an_https_site_is_waited_for_on_443_which_tls_already_requires():
    assert problems_of({"openPorts": [22, 443], "tls": "self-signed"}) == []
    [problem] = problems_of({"openPorts": [22, 80], "tls": "self-signed"})
    assert "openPorts[2]' 443" in problem


def test_no_port_22_while_the_wait_logs_in_is_refused():
    [problem] = problems_of({"openPorts": [80, 443]})  # the stack's own key: the wait logs in
    assert "openPorts has no 22, but waitForReady logs in over SSH" in problem
    assert "`pulumi config set --path 'openPorts[2]' 22`" in problem
    with_private_key = {"openPorts": [80], "keyName": "vockey", "sshPrivateKey": MOCK_PRIVATE_KEY}
    assert any("has no 22" in p for p in problems_of(with_private_key, secret_keys=("sshPrivateKey",)))


def test_without_a_key_to_log_in_with_the_wait_needs_no_ssh_port():
    assert problems_of({"openPorts": [80], "keyName": "vockey"}) == []
    assert problems_of({"openPorts": [80], "sshPublicKey": MOCK_PUBLIC_KEY}) == []
    assert problems_of({"openPorts": [80, 443], "waitForReady": False}) == []


def generated_key(tmp_path, key_type: str) -> str:
    path = tmp_path / key_type
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", "profe@aula", "-f", str(path)], check=True
    )
    return path.with_suffix(".pub").read_text().strip()


@pytest.mark.parametrize("key_type", ["ed25519", "rsa"])
def test_keys_ssh_keygen_makes_are_accepted(key_type, tmp_path):
    key = generated_key(tmp_path, key_type)
    assert list(ssh_public_key_problems(key)) == []
    assert problems_of({"sshPublicKey": key}) == []


def test_blobs_that_are_not_the_named_key_are_refused(tmp_path):
    ed25519 = generated_key(tmp_path, "ed25519").split()
    rsa = generated_key(tmp_path, "rsa").split()
    blob = base64.b64decode(ed25519[1])
    refused = [
        "ssh-ed25519 AAAA",  # the example: no key at all
        f"ssh-ed25519 {ed25519[1][:40]}",  # cut short
        f"ssh-rsa {ed25519[1]}",  # another type's key
        f"ssh-ed25519 {rsa[1]}",
        f"ssh-ed25519 {base64.b64encode(blob + b'x').decode()}",  # trailing bytes
        f"ssh-ed25519 {base64.b64encode(blob[:-1]).decode()}",
        f"ssh-ed25519 {ed25519[1][:-2]}A=",  # altered padding
        f"ssh-ed25519 {ed25519[1][:20]}={ed25519[1][20:]}",  # a stray '=' lenient base64 skips
        # The shape of an ED25519 key, under another name.
        "ssh-ed25519 " + base64.b64encode(b"\0\0\0\x0bssh-xd25519\0\0\0\x20" + bytes(32)).decode(),
    ]
    for key in refused:
        [problem] = problems_of({"sshPublicKey": key})
        assert "is not a whole ssh-" in problem and "Paste the .pub file's line again" in problem, key


def test_a_private_key_pasted_as_the_public_one_keeps_its_own_message():
    [problem] = problems_of({"sshPublicKey": "-----BEGIN OPENSSH PRIVATE KEY-----"})
    assert "never the private key" in problem
