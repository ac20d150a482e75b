"""The rehearsal image: a cached Debian root filesystem that boots like Debian's EC2 AMI.

Built once per release with debootstrap, carrying what a Debian cloud image carries
(cloud-init of that release, systemd, locales, sudo, openssh-server, curl, ...), so
user-data that boots here boots on the AMI. The cache key is a hash of everything that
goes into the image; when that recipe changes, the image is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

CACHE_DIR = Path("/var/cache/flasklab/images")
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Certificate authorities this machine trusts beyond Debian's (a proxy's or a company's).
# They belong to the rehearsal image, like a corporate CA would, never to the user-data.
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")

# What a Debian cloud image has before cloud-init runs. python3-venv, nginx & co. are
# deliberately absent: the user-data must install them, as on EC2.
BASE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "ca-certificates",
    "curl",
    "locales",
    "sudo",
    "openssh-server",
    "netbase",
    "iproute2",
    "procps",
    "less",
    "python3",
)
# debootstrap cannot resolve cloud-init's dependencies itself: installed with apt after.
APT_PACKAGES = ("cloud-init",)

# Debian's AMIs have this locale generated; cloud-init's locale module (22.4, Debian 12)
# depends on it, since Debian's locale-gen ignores the locale it is asked for.
GENERATED_LOCALES = "en_US.UTF-8 UTF-8\n"
# Keep the journal on disk so the report can read units' logs from the host.
IMAGE_DIRS = ("var/log/journal",)
# Rehearsal-only settings, files of the image (never of the user-data):
IMAGE_FILES = {
    # The rendered user-data is seeded through NoCloud; the network is the host's,
    # so cloud-init must not configure it.
    "etc/cloud/cloud.cfg.d/99_flasklab_rehearsal.cfg": (
        "# flasklab rehearsal image: seed from /var/lib/cloud/seed/nocloud, keep the host's network.\n"
        "datasource_list: [NoCloud, None]\n"
        "network: {config: disabled}\n"
    ),
    # Like a fresh AMI: the machine id is made on first boot.
    "etc/machine-id": "",
}


def sources_list(codename: str) -> str:
    return (
        f"deb {MIRROR} {codename} main\n"
        f"deb {MIRROR} {codename}-updates main\n"
        f"deb {SECURITY_MIRROR} {codename}-security main\n"
    )


def image_recipe(codename: str) -> dict:
    """Everything the image is made of: its hash names the cached image."""
    local_cas = {path.name: path.read_text() for path in sorted(LOCAL_CA_DIR.glob("*.crt"))}
    return {
        "format": 1,
        "codename": codename,
        "variant": "minbase",
        "base_packages": BASE_PACKAGES,
        "apt_packages": APT_PACKAGES,
        "sources": sources_list(codename),
        "files": IMAGE_FILES,
        "dirs": IMAGE_DIRS,
        "locales": GENERATED_LOCALES,
        "local_cas": local_cas,
    }


def image_path(codename: str) -> Path:
    digest = hashlib.sha256(json.dumps(image_recipe(codename), sort_keys=True).encode()).hexdigest()
    return CACHE_DIR / f"debian-{codename}-{digest[:12]}"


def _run(command: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(
            f"building the rehearsal image failed at `{' '.join(command)}` (exit {result.returncode}).\n"
            f"Last lines of {log}:\n{tail}\n"
            f"Check that this machine reaches {MIRROR}, then run the rehearsal again."
        )


def _ready_marker(path: Path) -> Path:
    return path.with_name(path.name + ".ready")


def ensure_image(codename: str, progress: Callable[[str], None]) -> Path:
    """The cached image of a Debian release, built first if missing or out of date."""
    path = image_path(codename)
    if _ready_marker(path).exists() and path.is_dir():
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for stale in CACHE_DIR.glob(f"debian-{codename}-*"):
        if stale not in (path, _ready_marker(path)):
            if stale.is_dir():
                progress(f"removing the out-of-date image {stale.name}")
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink()
    building = path.with_name(path.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    log = path.with_name(path.name + ".log")
    log.write_text("")
    started = time.monotonic()
    progress(f"building the Debian {codename} image once (about a minute); log: {log}")
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            codename,
            str(building),
            MIRROR,
        ],
        log,
    )
    for ca in LOCAL_CA_DIR.glob("*.crt"):
        shutil.copy(ca, building / "usr/local/share/ca-certificates" / ca.name)
    _run(["chroot", str(building), "update-ca-certificates"], log)
    (building / "etc/apt/sources.list").write_text(sources_list(codename))
    # No service may start inside the chroot while packages install.
    policy = building / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    _run(["chroot", str(building), "apt-get", "update", "-q"], log)
    _run(
        [
            "chroot",
            str(building),
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "-q",
            *APT_PACKAGES,
        ],
        log,
    )
    (building / "etc/locale.gen").write_text(GENERATED_LOCALES)
    _run(["chroot", str(building), "locale-gen"], log)
    _run(["chroot", str(building), "apt-get", "clean"], log)
    policy.unlink()
    for relative, content in IMAGE_FILES.items():
        target = building / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    for relative in IMAGE_DIRS:
        (building / relative).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(path, ignore_errors=True)
    building.rename(path)
    _ready_marker(path).write_text(json.dumps(image_recipe(codename), indent=1))
    progress(f"image ready in {time.monotonic() - started:.0f} s: {path}")
    return path
