"""Recipes as data: which packages, which files (templates), which deploy steps, which units.

Adding a recipe means adding an entry here and its templates, not a branch in the
renderer, the Pulumi program or the rehearsal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerFile:
    """One file the server gets, rendered from the template of the same name.

    `path` may use {app} for the app's name. `checker` names the tool that validates the
    rendered file in the tests ("nginx", "systemd", "sh").
    """

    template: str
    path: str
    mode: str = "0644"
    checker: str | None = None


@dataclass(frozen=True)
class Recipe:
    name: str
    tutorial: str
    summary: str
    packages: tuple[str, ...]
    files: tuple[ServerFile, ...]
    # Fragments of templates/deploy/, run in this order by flasklab-deploy on first boot.
    deploy_steps: tuple[str, ...]
    # systemd units whose state and journal explain a failure ({app} allowed).
    units: tuple[str, ...]
    # Log files on the server worth showing when something fails ({app} allowed).
    logs: tuple[str, ...]


# Files and steps every recipe shares.
DEPLOY_SCRIPT = ServerFile("flasklab-deploy", "/usr/local/sbin/flasklab-deploy", "0755", "sh")
BASE_PACKAGES = ("python3-venv", "curl")

NGINX_GUNICORN_SYSTEMD = Recipe(
    name="nginx-gunicorn-systemd",
    tutorial="001",
    summary="Nginx in front of Gunicorn; Gunicorn under systemd on a unix socket",
    packages=("nginx",),
    files=(
        ServerFile("gunicorn.socket", "/etc/systemd/system/{app}.socket", checker="systemd"),
        ServerFile("gunicorn.service", "/etc/systemd/system/{app}.service", checker="systemd"),
        ServerFile("nginx-site.conf", "/etc/nginx/sites-available/{app}", checker="nginx"),
    ),
    deploy_steps=("app-source.sh", "venv.sh", "systemd-gunicorn.sh", "nginx-site.sh"),
    units=("{app}.socket", "{app}.service", "nginx.service"),
    logs=("/var/log/nginx/{app}.error.log", "/var/log/nginx/error.log"),
)

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (NGINX_GUNICORN_SYSTEMD,)}
