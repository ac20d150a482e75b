"""Let's Encrypt in a rehearsal, for real: pebble (Let's Encrypt's test ACME server, from
Debian's package) issues the rehearsed server its certificate through the same
flasklab-letsencrypt.timer, certbot and HTTP-01 challenge as on EC2. Everything runs in
the rehearsal's own network namespace (network.py), nothing on this machine's addresses:

- pebble answers at ACME_DIRECTORY; the container's certbot is pointed at it by the
  container's /etc/letsencrypt/cli.ini, and trusts its HTTPS certificate through the
  container's CA store: files of the rehearsal's copy of the image, never of the user-data;
- pebble-challtestsrv is pebble's DNS server and resolves every name to the container's
  address, so pebble validates each name over http://NAME/ against the container's web
  server, as Let's Encrypt does (no PEBBLE_VA_ALWAYS_VALID);
- metadata.py stands in for EC2's instance metadata (IMDSv2) and gives the container's
  address as the server's public IPv4 address. As on EC2 it is not on the server: it runs
  in a network namespace of its own, linked to the rehearsal's by a veth pair that is
  gone with it (the server's web server must have port 80 on every address to itself);
- the container's /etc/hosts resolves the server names to its address, as DNS resolves a
  name that points at an EC2 server (dnsZone's records, or the teacher's).

The probes then trust pebble's root, which pebble makes anew at each start (ROOT_FILE).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from flasklab.rehearsal import metadata
from flasklab.rehearsal.network import Network

ACME_LISTEN = "127.0.0.1:14000"
ACME_DIRECTORY = f"https://{ACME_LISTEN}/dir"
MANAGEMENT_LISTEN = "127.0.0.1:15000"
DNS_LISTEN = "127.0.0.1:8053"
# pebble's root certificate, in the run's folder: what the probes trust.
ROOT_FILE = "acme-root.pem"
# The CA of pebble's own HTTPS endpoint, as the container trusts it.
ENDPOINT_CA = "usr/local/share/ca-certificates/flasklab-rehearsal-acme.crt"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
# Debian's certbot package ships /etc/letsencrypt/cli.ini with these two settings; cloud-init
# installs packages with --force-confold, so the rehearsal's copy, with `server`, stays.
CLI_INI = (
    "# flasklab rehearsal: certbot asks pebble, the rehearsal's ACME server, not Let's Encrypt.\n"
    "max-log-backups = 0\n"
    "preconfigured-renewal = True\n"
    f"server = {ACME_DIRECTORY}\n"
)
# pebble validates at once (no random sleep) and never rejects a nonce on purpose: what it
# tests is the server, not certbot's retries.
PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
PROGRAMS = {"pebble": "pebble", "pebble-challtestsrv": "pebble", "openssl": "openssl"}
START_SECONDS = 30


def _openssl(*arguments: str, folder: Path) -> None:
    subprocess.run(["openssl", *arguments], cwd=folder, check=True, capture_output=True)


def make_endpoint_certificate(folder: Path) -> None:
    """A throwaway CA and the certificate pebble serves its API with (127.0.0.1)."""
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *curve, "-keyout", "acme-ca.key", "-out", "acme-ca.pem", "-days", "7",
             "-subj", "/CN=flasklab rehearsal ACME endpoint CA", folder=folder)  # fmt: skip
    _openssl("req", *curve, "-keyout", "acme-key.pem", "-out", "acme.csr", "-subj", "/CN=localhost",
             folder=folder)  # fmt: skip
    (folder / "acme-cert.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    _openssl("x509", "-req", "-in", "acme.csr", "-CA", "acme-ca.pem", "-CAkey", "acme-ca.key",
             "-CAcreateserial", "-days", "7", "-extfile", "acme-cert.ext", "-out", "acme-cert.pem",
             folder=folder)  # fmt: skip


def prepare_root(root: Path, folder: Path, address: str, names: tuple[str, ...]) -> None:
    """The container's side, before it boots: its names, certbot's server and the trust in it."""
    make_endpoint_certificate(folder)
    ca = (folder / "acme-ca.pem").read_text()
    (root / ENDPOINT_CA).parent.mkdir(parents=True, exist_ok=True)
    (root / ENDPOINT_CA).write_text(ca)  # kept when update-ca-certificates runs again
    with (root / CA_BUNDLE).open("a") as bundle:
        bundle.write(ca)
    (root / "etc/letsencrypt").mkdir(parents=True, exist_ok=True)
    (root / "etc/letsencrypt/cli.ini").write_text(CLI_INI)
    with (root / "etc/hosts").open("a") as hosts:
        hosts.write(f"# flasklab rehearsal: the server's names, as DNS resolves them\n{address} ")
        hosts.write(f"{' '.join(names)}\n")
    config = {
        "pebble": {
            "listenAddress": ACME_LISTEN,
            "managementListenAddress": MANAGEMENT_LISTEN,
            "certificate": str(folder / "acme-cert.pem"),
            "privateKey": str(folder / "acme-key.pem"),
            "httpPort": 80,  # Let's Encrypt's: HTTP-01 is validated on port 80
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (folder / "pebble.json").write_text(json.dumps(config, indent=2))


def _in_namespace(
    network: Network, command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A process in the rehearsal's network namespace, in a session of its own (like the
    container, it outlives a crashed owner until the next run's clean-up stops it)."""
    with log.open("ab") as output:
        return subprocess.Popen(
            ["nsenter", f"--net={network.netns_path}", *command],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def start(network: Network, folder: Path, address: str) -> list[subprocess.Popen]:
    """pebble, its DNS server and the instance metadata, in the namespace; once pebble
    answers, its root certificate is in ROOT_FILE."""
    dns = ["pebble-challtestsrv", "-defaultIPv4", address, "-defaultIPv6", "", "-dns01", DNS_LISTEN]
    dns += ["-http01", "", "-https01", "", "-tlsalpn01", "", "-management", "127.0.0.1:8055"]
    pebble = ["pebble", "-config", str(folder / "pebble.json"), "-dnsserver", DNS_LISTEN]
    processes = [
        _in_namespace(network, dns, folder / "acme-dns.log"),
        _in_namespace(network, pebble, folder / "pebble.log", {"PATH": "/usr/bin:/bin", **PEBBLE_ENV}),
    ]
    try:
        processes.append(_start_metadata(network, folder, address))
        (folder / ROOT_FILE).write_text(_root_certificate(network, folder))
    except (RuntimeError, subprocess.CalledProcessError, OSError):
        stop(processes)
        raise
    return processes


def _start_metadata(network: Network, folder: Path, address: str) -> subprocess.Popen:
    """metadata.py in a network namespace of its own (unshare), at METADATA_ADDRESS, which
    the rehearsal's namespace routes to over a veth pair: `imds` there, `eth0` in its own."""
    command = ["unshare", "--net", "--", sys.executable, "-m", "flasklab.rehearsal.metadata"]
    with (folder / "metadata.log").open("ab") as output:
        process = subprocess.Popen(
            [*command, metadata.METADATA_ADDRESS, address],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    own = Path(f"/proc/{process.pid}/ns/net")
    deadline = time.monotonic() + 5
    while own.exists() and os.readlink(own) == os.readlink("/proc/self/ns/net"):  # unshare not done yet
        if time.monotonic() > deadline:
            raise RuntimeError(f"the instance metadata stand-in did not start: see {folder / 'metadata.log'}")
        time.sleep(0.05)
    rehearsals = ["ip", "-n", network.netns]
    peer = ["peer", "name", "eth0", "netns", str(process.pid)]
    steps = [
        [*rehearsals, "link", "add", "imds", "type", "veth", *peer],
        [*rehearsals, "link", "set", "imds", "up"],
        [*rehearsals, "route", "add", f"{metadata.METADATA_ADDRESS}/32", "dev", "imds"],
        ["nsenter", f"--net={own}", "ip", "address", "add", f"{metadata.METADATA_ADDRESS}/32", "dev", "eth0"],
        ["nsenter", f"--net={own}", "ip", "link", "set", "eth0", "up"],
        ["nsenter", f"--net={own}", "ip", "route", "add", "default", "dev", "eth0"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True)
    except subprocess.CalledProcessError:
        stop([process])
        raise
    return process


def _root_certificate(network: Network, folder: Path) -> str:
    """pebble's root, from its management API (reachable in the namespace only)."""
    fetch = (
        "import ssl, sys, urllib.request; "
        "context = ssl.create_default_context(cafile=sys.argv[1]); "
        "print(urllib.request.urlopen(sys.argv[2], context=context, timeout=5).read().decode())"
    )
    url = f"https://{MANAGEMENT_LISTEN}/roots/0"
    command = ["nsenter", f"--net={network.netns_path}", sys.executable, "-c", fetch]
    command += [str(folder / "acme-ca.pem"), url]
    deadline = time.monotonic() + START_SECONDS
    while True:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode == 0 and "BEGIN CERTIFICATE" in result.stdout:
            return result.stdout
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"pebble did not answer at {url} within {START_SECONDS} s: see {folder / 'pebble.log'}\n"
                f"{result.stderr.strip()[-500:]}"
            )
        time.sleep(0.5)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
