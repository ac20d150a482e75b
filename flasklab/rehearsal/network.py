"""A private network for each rehearsal, so that nothing listens on this machine's own
addresses and rehearsals run side by side.

Each rehearsal gets a network namespace of its own with two links:
- a veth pair to this machine, on a /30 of RANGE: this machine reaches the container's
  servers at the container's address, as a student's browser reaches the EC2 instance's;
- a tap device served by slirp4netns, which carries the container's own connections out
  (apt, pip, git) through ordinary sockets of this machine: no IP forwarding, no NAT or
  firewall rule is changed on this machine.

Everything made here is named with flasklab's prefixes, so a later run can find and
remove what a crashed one left.
"""

from __future__ import annotations

import ipaddress
import os
import select
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The /30s the rehearsals' veth pairs take, one each: this machine's end is .1, the
# container's .2. A private range chosen to be rare on classroom networks.
RANGE = ipaddress.ip_network("10.213.0.0/16")
MAX_NETWORKS = 256
NETNS_PREFIX = "flasklab-"
LINK_PREFIX = "flk"  # this machine's end of a veth pair; link names have 15 characters at most
NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")
# The container's end of the veth pair, and slirp4netns' tap device, inside the namespace.
CONTAINER_LINK = "host0"
OUTBOUND_LINK = "tap0"
# slirp4netns' DNS forwarder, inside the namespace: it asks this machine's resolvers.
OUTBOUND_DNS = "10.0.2.3"


@dataclass(frozen=True)
class Network:
    """One rehearsal's network, numbered `index`."""

    index: int

    @property
    def netns(self) -> str:
        return f"{NETNS_PREFIX}{self.index}"

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def host_link(self) -> str:
        return f"{LINK_PREFIX}{self.index}"

    @property
    def _subnet(self) -> ipaddress.IPv4Network:
        return list(RANGE.subnets(new_prefix=30))[self.index]  # type: ignore[return-value]

    @property
    def host_address(self) -> str:
        return str(self._subnet.network_address + 1)

    @property
    def container_address(self) -> str:
        return str(self._subnet.network_address + 2)


def _ip(*arguments: str) -> None:
    result = subprocess.run(["ip", *arguments], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(arguments)}` failed: {result.stderr.strip()}")


def indexes_in_use() -> set[int]:
    """The numbers of the rehearsal networks on this machine (namespaces or links)."""
    names = [path.name for path in NETNS_DIR.glob(f"{NETNS_PREFIX}*")]
    names += [path.name for path in SYS_NET.glob(f"{LINK_PREFIX}*")]
    found = set()
    for name in names:
        number = name.removeprefix(NETNS_PREFIX).removeprefix(LINK_PREFIX)
        if number.isdigit():
            found.add(int(number))
    return found


def create(index: int) -> Network:
    """The namespace and its veth pair, addressed and up (callers hold the runs' lock)."""
    network = Network(index)
    remove(network)  # anything a crashed run left under this number
    _ip("netns", "add", network.netns)
    try:
        _ip(
            "link",
            "add",
            network.host_link,
            "type",
            "veth",
            "peer",
            "name",
            CONTAINER_LINK,
            "netns",
            network.netns,
        )
        _ip("address", "add", f"{network.host_address}/30", "dev", network.host_link)
        _ip("link", "set", network.host_link, "up")
        inside = ("-n", network.netns)
        _ip(*inside, "address", "add", f"{network.container_address}/30", "dev", CONTAINER_LINK)
        _ip(*inside, "link", "set", CONTAINER_LINK, "up")
        _ip(*inside, "link", "set", "lo", "up")
    except RuntimeError:
        remove(network)
        raise
    return network


def start_outbound(network: Network, log: Path, timeout: float = 10) -> subprocess.Popen:
    """slirp4netns for the namespace, once it has configured the container's default
    route and DNS (OUTBOUND_DNS). It runs in a session of its own, like the container, so
    that a kept rehearsal keeps its way out; stop it with the container."""
    ready_read, ready_write = os.pipe()
    try:
        with log.open("ab") as output:
            process = subprocess.Popen(
                [
                    "slirp4netns",
                    "--configure",
                    "--mtu=65520",
                    "--disable-host-loopback",
                    f"--ready-fd={ready_write}",
                    "--netns-type=path",
                    str(network.netns_path),
                    OUTBOUND_LINK,
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(ready_write,),
                start_new_session=True,
            )
        os.close(ready_write)
        ready_write = -1
        readable, _, _ = select.select([ready_read], [], [], timeout)
        if not readable or not os.read(ready_read, 1):
            process.kill()
            raise RuntimeError(f"slirp4netns did not set up the container's way out; see {log}")
        return process
    finally:
        os.close(ready_read)
        if ready_write != -1:
            os.close(ready_write)


def remove(network: Network) -> None:
    """The namespace (its end of the veth pair goes with it) and this machine's end."""
    if network.netns_path.exists():
        subprocess.run(["ip", "netns", "delete", network.netns], capture_output=True, check=False)
    if (SYS_NET / network.host_link).exists():
        subprocess.run(["ip", "link", "delete", network.host_link], capture_output=True, check=False)
