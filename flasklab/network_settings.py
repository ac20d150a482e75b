"""The network's settings checked: server names, ports, CIDR ranges, the SSH key, and the
ports `pulumi up`'s wait for a ready server needs.

Split from flasklab/settings.py (which calls `network_problems` with the coerced values);
it imports nothing of settings, so either reads without the other.
"""

from __future__ import annotations

import binascii
import ipaddress
import re
import struct
from collections.abc import Iterator, Mapping
from typing import Any

PORT_RANGE = (1, 65535)
SSH_PORT = 22
HTTP_PORT = 80
SERVER_NAME_MAX_LENGTH = 253
# Host names as Nginx and Apache match them. Unlike DNS host names, an underscore
# is allowed: tutorial 001 serves "practica_flask" through /etc/hosts.
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
SERVER_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
# EC2 imports RSA and ED25519 public keys only: `TYPE BLOB [comment]`.
SSH_PUBLIC_KEY = re.compile(r"^(?P<type>ssh-ed25519|ssh-rsa) (?P<blob>[A-Za-z0-9+/=]+)( [^\x00-\x1f\x7f]*)?$")
# The fields of each key type's blob after its type name (RFC 4253 6.6, RFC 8709 4).
_BLOB_FIELDS = {"ssh-ed25519": 1, "ssh-rsa": 2}
_ED25519_KEY_BYTES = 32
# Names that exist only in /etc/hosts or inside a network: no public DNS, no Let's Encrypt.
_PRIVATE_SUFFIXES = (
    ".test",
    ".local",
    ".lan",
    ".localhost",
    ".invalid",
    ".example",
    ".internal",
    ".home.arpa",
)
_EC2_HOSTNAME = re.compile(r"(^ip-\d+-\d+-\d+-\d+\.|^ec2-\d+-\d+-\d+-\d+\.|\.amazonaws\.com$)")


def network_problems(values: Mapping[str, Any], server_names: list[str]) -> Iterator[str]:
    """serverName, serverAliases, openPorts, sshCidrs, webCidrs, keyName, sshPublicKey."""
    server_name, *aliases = server_names
    yield from server_name_problems("serverName", server_name)
    for alias in aliases:
        yield from server_name_problems("serverAliases", alias)
    if server_name in aliases or len(set(aliases)) != len(aliases):
        yield "serverAliases repeats a name; list every name once."
    yield from port_problems(values["openPorts"] or [])
    for key in ("sshCidrs", "webCidrs"):
        yield from cidr_problems(key, values[key] or [])
    key_name = str(values["keyName"] or "").strip()
    public_key = str(values["sshPublicKey"] or "").strip()
    if key_name and public_key:
        yield (
            "keyName and sshPublicKey are both set; use one: `pulumi config rm sshPublicKey` to use "
            "the existing key pair, or `pulumi config rm keyName` to create one from the public key."
        )
    if public_key:
        yield from ssh_public_key_problems(public_key)


def ssh_public_key_problems(public_key: str) -> Iterator[str]:
    """A key EC2 would refuse halfway through `pulumi up`: not `TYPE BLOB`, or a blob that is
    not base64 of that type's key (it starts with the type's name, length-prefixed)."""
    found = SSH_PUBLIC_KEY.fullmatch(public_key)
    if not found:
        yield (
            "sshPublicKey is not an OpenSSH public key EC2 imports; paste the one line of your .pub "
            "file, an ED25519 or RSA key (it starts with ssh-ed25519 or ssh-rsa), never the private key."
        )
        return
    key_type = found["type"]
    if _blob_fields(found["blob"], key_type) is None:
        yield (
            f"sshPublicKey: the text after {key_type} is not a whole {key_type} key (cut short, or "
            f"altered when copied). Paste the .pub file's line again, in one piece: "
            f'`pulumi config set sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"`.'
        )


def _blob_fields(blob: str, key_type: str) -> list[bytes] | None:
    """The blob's length-prefixed fields after the type name, if the blob is base64 of a
    key of key_type and nothing else; else None."""
    try:
        data = binascii.a2b_base64(blob, strict_mode=True)
    except binascii.Error:
        return None
    fields: list[bytes] = []
    while data:
        if len(data) < 4:
            return None
        (length,) = struct.unpack(">I", data[:4])
        if len(data) < 4 + length:
            return None
        fields.append(data[4 : 4 + length])
        data = data[4 + length :]
    if not fields or fields[0] != key_type.encode() or len(fields) != 1 + _BLOB_FIELDS[key_type]:
        return None
    if key_type == "ssh-ed25519" and len(fields[1]) != _ED25519_KEY_BYTES:
        return None
    return fields[1:]


def readiness_port_problems(ports: list[int], http_check: bool, ssh_wait: bool) -> Iterator[str]:
    """`pulumi up`'s wait requests readyPath over HTTP (http_check) and logs in over SSH
    (ssh_wait); a port openPorts leaves closed would make every server's wait run its whole
    timeout and then fail."""
    if http_check and HTTP_PORT not in ports:
        yield (
            f"openPorts has no {HTTP_PORT}, but waitForReady checks every server over HTTP on port "
            f"{HTTP_PORT}: add it (`pulumi config set --path 'openPorts[{len(ports)}]' {HTTP_PORT}`), "
            f"or turn the wait off: `pulumi config set waitForReady false`."
        )
    if ssh_wait and SSH_PORT not in ports:
        yield (
            f"openPorts has no {SSH_PORT}, but waitForReady logs in over SSH to wait for first boot "
            f"(and `class check` logs in too): add it (`pulumi config set --path "
            f"'openPorts[{len(ports)}]' {SSH_PORT}`), or turn the wait off: "
            f"`pulumi config set waitForReady false`."
        )


def port_problems(ports: list[int]) -> Iterator[str]:
    low, high = PORT_RANGE
    for port in ports:
        if port is not None and not low <= port <= high:
            yield f"openPorts: {port} is not a TCP port; use numbers from {low} to {high}."
    if len(set(ports)) != len(ports):
        yield "openPorts repeats a port; list every port once."


def cidr_problems(key: str, cidrs: list[str]) -> Iterator[str]:
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError as error:
            yield (
                f"{key}: {cidr!r} is not a valid CIDR range ({error}). Write an address with its "
                f"prefix length, e.g. 203.0.113.7/32 for one address or 0.0.0.0/0 for everyone."
            )


def server_name_problems(key: str, name: str) -> Iterator[str]:
    if not name or len(name) > SERVER_NAME_MAX_LENGTH or not SERVER_NAME.fullmatch(name):
        yield (
            f"{key}: {name!r} is not a valid server name. Use lowercase letters, digits, '-' and "
            f"'_' in dot-separated parts that do not start or end with '-', e.g. practica_flask "
            f"or flask.example.org."
        )


def why_not_public(name: str) -> str:
    """Why a server name cannot be a public DNS name ('' if it can be)."""
    if "." not in name:
        return "has no dot"
    if all(label.isdigit() for label in name.split(".")):
        return "is an IP address, not a domain name"
    if "_" in name:
        return "holds an underscore, which DNS host names cannot"
    for suffix in _PRIVATE_SUFFIXES:
        if name.endswith(suffix):
            return f"ends in {suffix}, which is reserved for private use"
    if _EC2_HOSTNAME.search(name):
        return "is one of EC2's own host names, which change with the server and are not yours"
    return ""
