"""Package downloads kept across rehearsals on this machine: apt's .deb files per Debian
release, and pip's cache (wheels and downloads). A container's root gets them before it
boots, as hard links, and gives back what it downloaded when it is removed, so a second
rehearsal of a stack downloads nothing it already has. The user-data is not changed:
apt and pip find the files in their ordinary caches; pip's is named by PIP_CACHE_DIR in
the container's manager environment (see container.py), rehearsal-only like the proxy CA.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

CACHE_DIR = Path("/var/cache/flasklab/packages")
# Where, inside the container, apt keeps downloaded packages and pip its cache.
APT_ARCHIVES = "var/cache/apt/archives"
PIP_CACHE = "/var/cache/flasklab-pip"


def _apt_cache(codename: str) -> Path:
    return CACHE_DIR / codename / "apt"


def _pip_cache() -> Path:
    return CACHE_DIR / "pip"


def _link_tree(source: Path, target: Path) -> None:
    """Hard links of source's files under target (copies across file systems); files
    already in target are kept. Failures are ignored: a cache is only a shortcut."""
    if not source.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    linked = subprocess.run(
        ["cp", "-a", "-l", "-n", f"{source}/.", str(target)], capture_output=True, check=False
    )
    if linked.returncode != 0:
        subprocess.run(["cp", "-a", "-n", f"{source}/.", str(target)], capture_output=True, check=False)


def seed(root: Path, codename: str) -> None:
    """Put the cached packages where the container's apt and pip look for them."""
    _link_tree(_apt_cache(codename), root / APT_ARCHIVES)
    pip_cache = root / PIP_CACHE.lstrip("/")
    _link_tree(_pip_cache(), pip_cache)
    pip_cache.mkdir(parents=True, exist_ok=True)
    # Any user runs pip there (the app's user, under its own uid): its folders are the
    # container's own copies, open to all; the files are read-only links.
    subprocess.run(["chmod", "-R", "a+rX", str(pip_cache)], check=False)
    subprocess.run(["find", str(pip_cache), "-type", "d", "-exec", "chmod", "0777", "{}", "+"], check=False)


def harvest(root: Path, codename: str) -> None:
    """Keep what the container downloaded for the next rehearsal."""
    archives = root / APT_ARCHIVES
    apt_cache = _apt_cache(codename)
    apt_cache.mkdir(parents=True, exist_ok=True)
    debs = [str(path) for path in archives.glob("*.deb")]
    if debs:
        subprocess.run(["cp", "-l", "-n", *debs, str(apt_cache)], capture_output=True, check=False)
    pip_cache = _pip_cache()
    _link_tree(root / PIP_CACHE.lstrip("/"), pip_cache)
    # Folders came from the container open to all: close them on this machine.
    subprocess.run(["chmod", "-R", "go-w", str(pip_cache)], check=False)
