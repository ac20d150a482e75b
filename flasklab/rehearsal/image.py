"""The rehearsal image: a cached Debian root filesystem that boots like Debian's EC2 AMI.

Built once per release with debootstrap, carrying what a Debian cloud image carries
(cloud-init of that release, systemd, locales, sudo, openssh-server, curl, ...), so
user-data that boots here boots on the AMI. The cache key is a hash of everything that
goes into the image; when that recipe changes, the image is rebuilt.

A second kind of image per release, "checkers", is the base image plus the Debian
packages whose tools read the generated configs (nginx -t, apache2 -t, uwsgi --strict,
supervisord's parser, shellcheck, ...): the tests run those tools there, so a Debian 13
stack is checked by Debian 13's tools and this machine needs none of them installed.

Several processes may ask for an image at once (pytest-xdist workers, rehearsals side by
side): each kind and release has a lock file, held while an image is checked and built.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
        "# flasklab rehearsal image: seed from /var/lib/cloud/seed/nocloud; the rehearsal sets\n"
        "# the network up from outside.\n"
        "datasource_list: [NoCloud, None]\n"
        "network: {config: disabled}\n"
    ),
    # As on Debian's AMIs (their 01_debian_cloud.cfg): the login user is admin, with sudo.
    "etc/cloud/cloud.cfg.d/01_debian_cloud.cfg": (
        "system_info:\n"
        "  default_user:\n"
        "    name: admin\n"
        "    lock_passwd: true\n"
        "    gecos: Debian\n"
        "    groups: [adm, audio, cdrom, dialout, dip, floppy, plugdev, sudo, video]\n"
        '    sudo: ["ALL=(ALL) NOPASSWD:ALL"]\n'
        "    shell: /bin/bash\n"
    ),
    # Like a fresh AMI: the machine id is made on first boot.
    "etc/machine-id": "",
}


# The checkers image: the packages whose tools read the generated files on the server
# (nginx as the servers install it, Apache with mod_wsgi, uWSGI, supervisor), shellcheck
# for the deploy scripts and python-dotenv for the env files. cloud-init, systemd-analyze,
# sh and python3 come with the base image.
CHECKER_PACKAGES = (
    "nginx",
    "apache2",
    "libapache2-mod-wsgi-py3",
    "uwsgi-core",
    "uwsgi-plugin-python3",
    "supervisor",
    "shellcheck",
    "python3-dotenv",
    "openssl",
)
# While packages install in a chroot, no service may start (nor touch this machine's).
POLICY_RC_D = "#!/bin/sh\nexit 101\n"


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


def checkers_recipe(codename: str) -> dict:
    """Everything the checkers image is made of, the base image's recipe included."""
    return {
        "format": 1,
        "base": image_recipe(codename),
        "packages": CHECKER_PACKAGES,
        "policy_rc_d": POLICY_RC_D,
    }


def _digest(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def image_path(codename: str) -> Path:
    return CACHE_DIR / f"debian-{codename}-{_digest(image_recipe(codename))}"


def checkers_image_path(codename: str) -> Path:
    # Named apart from the base images: neither kind's stale-image glob matches the other.
    return CACHE_DIR / f"checkers-{codename}-{_digest(checkers_recipe(codename))}"


def _run(command: list[str], log: Path, rerun: str = "run the rehearsal again") -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(
            f"building the image {log.stem} failed at `{' '.join(command)}` (exit {result.returncode}).\n"
            f"Last lines of {log}:\n{tail}\n"
            f"Check that this machine reaches {MIRROR}, then {rerun}."
        )


def _install_packages(
    root: Path, packages: tuple[str, ...], log: Path, rerun: str = "run the rehearsal again"
) -> None:
    """apt-get install in the chroot, with no service started (inside it, or on this machine)."""
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    chroot = ["chroot", str(root)]
    _run([*chroot, "apt-get", "update", "-q"], log, rerun)
    _run(
        [*chroot, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", *packages],
        log,
        rerun,
    )
    _run([*chroot, "apt-get", "clean"], log, rerun)
    policy.unlink()


def _ready_marker(path: Path) -> Path:
    return path.with_name(path.name + ".ready")


def _is_ready(path: Path) -> bool:
    return _ready_marker(path).exists() and path.is_dir()


@contextmanager
def _image_lock(kind: str, codename: str, progress: Callable[[str], None]) -> Iterator[None]:
    """Held while one process checks and builds an image of this kind and release; the
    others wait, then find it ready. The lock files stay (removing one would let two
    processes hold "the" lock at once)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / f"{kind}-{codename}.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            image = "checkers image" if kind == "checkers" else "image"
            progress(f"waiting for another process building the Debian {codename} {image}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _remove_stale(kind: str, codename: str, path: Path, progress: Callable[[str], None]) -> None:
    """Other images of this kind and release: built from an older recipe."""
    for stale in CACHE_DIR.glob(f"{kind}-{codename}-*"):
        if stale not in (path, _ready_marker(path)):
            if stale.is_dir():
                progress(f"removing the out-of-date image {stale.name}")
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink()


def ensure_image(codename: str, progress: Callable[[str], None]) -> Path:
    """The cached image of a Debian release, built first if missing or out of date."""

    def fill(building: Path, log: Path) -> None:
        _fill_image(codename, building, log)

    return _ensure("debian", codename, image_path(codename), image_recipe(codename), "image", fill, progress)


def ensure_checkers_image(codename: str, progress: Callable[[str], None]) -> Path:
    """The cached checkers image of a Debian release (the base image plus the checkers'
    packages), built first if missing or out of date. Never booted and never written to:
    checks run in throwaway overlays of it (see tests/config_tools.py)."""

    def fill(building: Path, log: Path) -> None:
        _fill_checkers_image(ensure_image(codename, progress), building, log)

    path, recipe = checkers_image_path(codename), checkers_recipe(codename)
    return _ensure("checkers", codename, path, recipe, "checkers image", fill, progress)


def _ensure(
    kind: str,
    codename: str,
    path: Path,
    recipe: dict,
    description: str,
    fill: Callable[[Path, Path], None],
    progress: Callable[[str], None],
) -> Path:
    """The image at `path`, built first (by `fill`, into a folder of its own) if missing."""
    if _is_ready(path):
        return path
    with _image_lock(kind, codename, progress):
        if not _is_ready(path):  # another process may have built it while this one waited
            _remove_stale(kind, codename, path, progress)
            building = path.with_name(path.name + ".building")
            shutil.rmtree(building, ignore_errors=True)
            log = path.with_name(path.name + ".log")
            log.write_text("")
            started = time.monotonic()
            progress(f"building the Debian {codename} {description} once (about a minute); log: {log}")
            fill(building, log)
            shutil.rmtree(path, ignore_errors=True)
            building.rename(path)
            _ready_marker(path).write_text(json.dumps(recipe, indent=1))
            progress(f"{description} ready in {time.monotonic() - started:.0f} s: {path}")
    return path


def _fill_image(codename: str, building: Path, log: Path) -> None:
    """A Debian root filesystem as a cloud image has it, in `building`."""
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
    _install_packages(building, APT_PACKAGES, log)
    (building / "etc/locale.gen").write_text(GENERATED_LOCALES)
    _run(["chroot", str(building), "locale-gen"], log)
    for relative, content in IMAGE_FILES.items():
        target = building / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    for relative in IMAGE_DIRS:
        (building / relative).mkdir(parents=True, exist_ok=True)


def _fill_checkers_image(base: Path, building: Path, log: Path) -> None:
    """The base image plus the checkers' packages, in `building`."""
    rerun = "run the tests again"
    _run(["cp", "-a", "--reflink=auto", str(base), str(building)], log, rerun)
    # apt in the chroot resolves names as this machine does now.
    resolv_conf = building / "etc/resolv.conf"
    if Path("/etc/resolv.conf").exists():
        resolv_conf.unlink(missing_ok=True)
        shutil.copy("/etc/resolv.conf", resolv_conf)
    _install_packages(building, CHECKER_PACKAGES, log, rerun)
