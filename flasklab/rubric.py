"""Settings -> the rubric `class grade` scores and `flasklab-check` shows: checkpoints
derived from what the recipe itself deploys (its packages, the app's folder, user and
environment, its manager, where the web server reaches it, the site, the database, HTTPS).

A checkpoint is data: its key (its texts in flasklab/rubric_texts/), its points, where it
is checked ("server": flasklab/server_check.py, run on the server; "outside": the probes
of `class grade`) and the arguments its check needs. No branch per recipe: the arguments
come from the recipe's entries in flasklab/recipes.py through flasklab.compose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flasklab import compose, contract
from flasklab.recipes import APP_ENV_FILE
from flasklab.rubric_texts import texts
from flasklab.settings import Settings

SERVER, OUTSIDE = "server", "outside"


@dataclass(frozen=True)
class Checkpoint:
    key: str
    points: int
    where: str
    args: dict[str, Any] = field(default_factory=dict)


def _entry_files(settings: Settings) -> list[str]:
    """Where the app's entry module may be: module.py or module/__init__.py."""
    base = f"{settings.app.dir}/{settings.app.module.replace('.', '/')}"
    return [f"{base}.py", f"{base}/__init__.py"]


def _local_address(settings: Settings) -> dict[str, Any]:
    """How the web server reaches the app, as the on-server check asks it: HTTP on a unix
    socket or a TCP port (Gunicorn), or the uwsgi protocol (uWSGI)."""
    address = compose.app_address(settings)
    protocol = "uwsgi" if settings.recipe.app_server == "uwsgi" else "http"
    return {
        "address": address,
        "protocol": protocol,
        "host": settings.server_name,
        "path": settings.app.ready_path,
    }


def _service_checkpoints(settings: Settings) -> list[Checkpoint]:
    recipe, app = settings.recipe, settings.app
    service = {
        "manager": recipe.manager,
        "program": app.name,
        # The units that start the app when enabled (a socket-activated service's socket too).
        "units": compose.app_units(settings),
        "unit": f"{app.name}.service" if recipe.manager == "systemd" else recipe.web_server.unit,
    }
    checkpoints = [
        Checkpoint("service_defined", 1, SERVER, service),
        Checkpoint("service_enabled", 1, SERVER, service),
        Checkpoint("service_active", 1, SERVER, service),
        Checkpoint("app_user", 1, SERVER, {"serving": compose.serving_program(settings), "user": app.user}),
        Checkpoint(
            "debug_off",
            1,
            SERVER,
            {"serving": compose.serving_program(settings), "env_file": compose.app_env_path(settings)},
        ),
    ]
    # mod_wsgi's daemons are restarted by Apache itself: nothing for the student to set.
    if recipe.manager != "apache2":
        checkpoints.append(Checkpoint("restarts", 1, SERVER, service))
    if recipe.app_address:
        checkpoints.append(Checkpoint("answers_locally", 2, SERVER, _local_address(settings)))
    return checkpoints


def rubric(settings: Settings, reboot: bool = False) -> list[Checkpoint]:
    """Every checkpoint of this server, in the tutorial's order; `reboot`: with the
    "survives a reboot" checkpoint, which only `class grade --reboot` measures."""
    app, web_server = settings.app, settings.recipe.web_server
    expect_static = not app.repo and bool(app.static_dir)
    return [
        Checkpoint("packages", 1, SERVER, {"packages": compose.recipe_packages(settings)}),
        Checkpoint("app_code", 1, SERVER, {"dir": app.dir, "files": _entry_files(settings)}),
        Checkpoint("app_owner", 1, SERVER, {"dir": app.dir, "user": app.user}),
        Checkpoint(
            "virtualenv",
            1,
            SERVER,
            {"venv": app.venv, "imports": ["flask", *settings.recipe.pip_packages]},
        ),
        *_service_checkpoints(settings),
        Checkpoint("web_config", 1, SERVER, {"web_server": web_server.name}),
        Checkpoint(
            "site_enabled", 1, SERVER, {"web_server": web_server.name, "server_name": settings.server_name}
        ),
        *(
            [
                Checkpoint(
                    "database_migrated", 1, SERVER, {"engine": settings.database.name, "database": app.name}
                )
            ]
            if settings.database
            else []
        ),
        Checkpoint("answers_by_name", 3, OUTSIDE, {"names": " ".join(settings.server_names)}),
        *(
            [
                Checkpoint(
                    "static_files",
                    1,
                    OUTSIDE,
                    {"path": f"{app.static_url}/{contract.SAMPLE_APP_STATIC_FILE}"},
                )
            ]
            if expect_static
            else []
        ),
        *([Checkpoint("https", 2, OUTSIDE, {"server_name": settings.server_name})] if settings.https else []),
        *(
            [Checkpoint("database_page", 1, OUTSIDE, {"label": settings.database.label})]
            if settings.database and not app.repo
            else []
        ),
        *(
            [Checkpoint("survives_reboot", 2, OUTSIDE, {"names": " ".join(settings.server_names)})]
            if reboot
            else []
        ),
    ]


def text_arguments(settings: Settings, checkpoint: Checkpoint | None = None) -> dict[str, str]:
    """What a checkpoint's (or a fault's) title and hint may name: the app, its folder and
    user, the server name, and the checkpoint's own arguments."""
    values = {
        "app": settings.app.name,
        "dir": settings.app.dir,
        "venv": settings.app.venv,
        "user": settings.app.user,
        "server_name": settings.server_name,
        "restart": compose.restart_command(settings),
        "web_server": settings.recipe.web_server.name,
        "manager": settings.recipe.manager,
        "address": compose.app_address(settings),
        "packages": " ".join(compose.recipe_packages(settings)),
        "units": " ".join(compose.app_units(settings)),
        "site": compose.enabled_at_boot(settings),
        "web_server_unit": settings.recipe.web_server.unit.removesuffix(".service"),
        "env_file": compose.for_app(APP_ENV_FILE.path, settings),
    }
    arguments = checkpoint.args.items() if checkpoint else ()
    values.update({name: str(value) for name, value in arguments if isinstance(value, str)})
    return values


def fault_texts(settings: Settings, language: str) -> tuple[str, str, str]:
    """Stage broken: (the fault's name, what the student sees, the fix) for the teacher;
    ('', '', '') at any other stage."""
    fault = compose.fault_of(settings)
    if fault is None:
        return "", "", ""
    entry = texts(language)[fault.text_key]
    values = text_arguments(settings)
    return fault.name, entry["title"].format(**values), entry["hint"].format(**values)


def title_and_hint(settings: Settings, checkpoint: Checkpoint, language: str) -> tuple[str, str]:
    entry = texts(language)[checkpoint.key]
    values = text_arguments(settings, checkpoint)
    return entry["title"].format(**values), entry["hint"].format(**values)


def server_spec(settings: Settings) -> dict[str, Any]:
    """What flasklab-check runs on the server: its checkpoints, each with its check's
    arguments and its texts in the stack's language."""
    checkpoints = []
    for checkpoint in rubric(settings):
        if checkpoint.where != SERVER:
            continue
        title, hint = title_and_hint(settings, checkpoint, settings.language)
        checkpoints.append(
            {
                "key": checkpoint.key,
                "points": checkpoint.points,
                "args": checkpoint.args,
                "title": title,
                "hint": hint,
            }
        )
    return {"app": settings.app.name, "checkpoints": checkpoints}


def server_spec_json(settings: Settings) -> str:
    # Compact: it travels in the user-data, which EC2 limits to 16 KB.
    return json.dumps(server_spec(settings), separators=(",", ":"), ensure_ascii=False) + "\n"
