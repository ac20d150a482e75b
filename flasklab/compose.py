"""Validated settings -> what the server gets, as data: its packages, the files rendered
from templates, the deploy steps, the units and logs that explain a failure, and how the
login user manages the app.

The recipe, web server, TLS mode and database entries of flasklab/recipes.py are composed
here, and their {app} placeholders filled in (for_app, the one place that does it), so
the renderer, the Pulumi program's outputs, the rehearsal and the tests read the same
answers.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from flasklab import contract, faults
from flasklab.app_secrets import AppSecrets, generated, rules_for
from flasklab.faults import Fault
from flasklab.recipes import (
    APP_ENV_FILE,
    APT_RETRIES,
    BASE_PACKAGES,
    CHECK_COMMAND,
    DEPLOY_SCRIPT,
    FAULT_SCRIPT,
    FIRST_STEPS,
    IDLE_STOP_FILES,
    IDLE_STOP_STEP,
    MIGRATE_STEP,
    STATUS_COMMAND,
    ServerFile,
)
from flasklab.settings import Settings


def for_app(text: str, settings: Settings) -> str:
    """A recipe's string with {app} filled in."""
    return text.format(app=settings.app.name)


def migrate_command(settings: Settings) -> str:
    """appMigrate, or the sample app's own when it has a database ('' for none)."""
    if settings.app.migrate:
        return settings.app.migrate
    return contract.SAMPLE_APP_MIGRATE if settings.database and not settings.app.repo else ""


def idle_stop(settings: Settings) -> bool:
    """Whether the server powers itself off when nobody uses it (autoStopIdleMinutes > 0)."""
    return settings.auto_stop_idle_minutes > 0


def deploy_steps(settings: Settings) -> list[str]:
    """The fragments of templates/deploy/ flasklab-deploy runs, in order: the idle stop's
    timer, the app and its settings, its database and migration, the recipe's start of the
    app, then the web server's site with HTTPS around it; as far as the stage goes (a
    self-signed certificate comes with the app, so that the student's site can use it)."""
    database, stage = settings.database, settings.stage
    app_steps = [
        *FIRST_STEPS,
        *((database.deploy_step,) if database else ()),
        *((MIGRATE_STEP,) if migrate_command(settings) else ()),
    ]
    return [
        *((IDLE_STOP_STEP,) if idle_stop(settings) else ()),
        *(app_steps if stage.installs_app else ()),
        *(settings.recipe.deploy_steps if stage.serves_app else ()),
        *(settings.tls.steps_before_site if stage.installs_app else ()),
        *(
            (settings.recipe.web_server.deploy_step, *settings.tls.steps_after_site)
            if stage.serves_app
            else ()
        ),
    ]


def server_files(settings: Settings) -> list[ServerFile]:
    """The files rendered from templates, in the order cloud-init writes them, with their
    paths and owners for this app: as far as the stage goes, and flasklab's own tools."""
    web_server, tls, database = settings.recipe.web_server, settings.tls, settings.database
    stage = settings.stage
    serving_files = [
        *settings.recipe.files,
        *((web_server.http_site,) if tls.http_site else ()),
        *((web_server.https_site,) if tls.https_site else ()),
        *tls.files,
    ]
    app_files = [*((database.setup_file,) if database else ()), APP_ENV_FILE]
    files = [
        APT_RETRIES,  # first: before cloud-init's own first apt run (students' apt too)
        *(serving_files if stage.serves_app else ()),
        *(app_files if stage.installs_app else ()),
        STATUS_COMMAND,
        *((CHECK_COMMAND,) if ships_check(settings) else ()),
        *(IDLE_STOP_FILES if idle_stop(settings) else ()),
        *((fault_file(fault),) if (fault := fault_of(settings)) else ()),
        DEPLOY_SCRIPT,
    ]
    return [
        replace(file, path=for_app(file.path, settings), owner=for_app(file.owner, settings))
        for file in files
    ]


def ships_check(settings: Settings) -> bool:
    """Whether the server gets flasklab-check: at the stages that leave the student work.
    A finished server's user-data is already near EC2's 16 KB (gzip) with the largest
    recipes, and the checker and its rubric add about 5 KB; `class grade` pipes its own
    copy over SSH to every server, finished or not, so grading never needs it there."""
    return not settings.stage.serves_app


def recipe_packages(settings: Settings) -> list[str]:
    """The Debian packages the recipe itself needs (what a student installs in the tutorial)."""
    database = settings.database.packages if settings.database else ()
    return sorted(
        {*settings.recipe.web_server.packages, *settings.recipe.packages, *settings.tls.packages, *database}
    )


def packages(settings: Settings) -> list[str]:
    """What cloud-init installs: nothing at stage bare (the student installs it all)."""
    if not settings.stage.installs_packages:
        return []
    extra = ("git",) if settings.app.repo else ()
    return sorted({*BASE_PACKAGES, *recipe_packages(settings), *extra})


def pip_packages(settings: Settings) -> tuple[str, ...]:
    """What pip installs into the app's environment besides its requirements."""
    driver = (settings.database.driver,) if settings.database else ()
    return (*settings.recipe.pip_packages, *driver)


def units(settings: Settings) -> list[str]:
    """The systemd units whose state and journal explain a failure."""
    recipe = settings.recipe
    database = (settings.database.unit,) if settings.database else ()
    return [for_app(unit, settings) for unit in (*recipe.units, recipe.web_server.unit, *database)]


def logs(settings: Settings) -> list[str]:
    """Log files on the server worth showing when something fails."""
    recipe = settings.recipe
    return [for_app(log, settings) for log in (*recipe.logs, *recipe.web_server.logs)]


def access_log(settings: Settings) -> str:
    """Where the web server logs each request to the app's site."""
    return for_app(settings.recipe.web_server.access_log, settings)


def nginx_names_bucket_size(names: tuple[str, ...]) -> int:
    """The server_names_hash_bucket_size nginx needs for these names, or 0 when its default
    (64 bytes: a cache line on x86-64 and Graviton) holds them. nginx's ngx_hash_init needs,
    per name, the name and 10 bytes rounded up to 8, plus 8: names longer than 46 characters
    otherwise fail `nginx -t` ("could not build server_names_hash")."""
    needed = max((-(-(len(name) + 10) // 8)) * 8 + 8 for name in names)
    size = 64
    while size < needed:
        size *= 2
    return 0 if size == 64 else size


def app_address(settings: Settings) -> str:
    return for_app(settings.recipe.app_address, settings)


def restart_command(settings: Settings) -> str:
    """How the login user restarts the app once logged in."""
    return for_app(settings.recipe.restart_command, settings)


def login_commands(settings: Settings) -> list[str]:
    """Commands the login user must be able to run without a password."""
    return [for_app(command, settings) for command in settings.recipe.login_commands]


def serving_program(settings: Settings) -> str:
    """What every process of the app's user runs."""
    return for_app(settings.recipe.serving_program, settings)


def app_env_path(settings: Settings) -> str:
    """The app's env file: its settings, which the service reads."""
    return for_app(APP_ENV_FILE.path, settings)


def database_setup_path(settings: Settings) -> str:
    return for_app(settings.database.setup_file.path, settings) if settings.database else ""


def tls_dir(settings: Settings) -> str:
    return f"{settings.app.config_dir}/tls"


def site_names(settings: Settings) -> dict[str, str]:
    """The web server's site names, for plain HTTP and for HTTPS."""
    return {"http": settings.app.name, "https": f"{settings.app.name}-https"}


def enabled_at_boot(settings: Settings) -> str:
    """The site the web server enables on first boot."""
    return site_names(settings)[settings.tls.enabled_at_boot]


def site_url(settings: Settings) -> str:
    """Where the app is (for Let's Encrypt: once the name's DNS points at the server)."""
    return f"{'https' if settings.https else 'http'}://{settings.server_name}/"


def boot_url(settings: Settings) -> str:
    """Where the app answers right after first boot (Let's Encrypt: plain HTTP until DNS
    points at the server)."""
    scheme = settings.tls.enabled_at_boot
    return f"{scheme}://{settings.server_name}/"


def fault_of(settings: Settings) -> Fault | None:
    """Stage broken: the fault this server gets, the teacher's or one chosen from the stack
    and the student (flasklab.faults.seeded_choice); None at any other stage."""
    if not settings.stage.breaks:
        return None
    if settings.fault:
        return faults.FAULTS[settings.fault]
    names = faults.applicable(settings.recipe.name, settings.database is not None, not settings.app.repo)
    return faults.FAULTS[faults.seeded_choice(settings.stack, settings.student, names)]


def fault_file(fault: Fault) -> ServerFile:
    """The fault's script, which flasklab-deploy runs once and deletes."""
    return ServerFile(fault.template, FAULT_SCRIPT, "0700", "sh")


def app_units(settings: Settings) -> list[str]:
    """The systemd units that start the app at boot when enabled: its own (a socket-activated
    service's socket too), or the manager's (supervisor), or the web server's (mod_wsgi)."""
    return [for_app(unit, settings) for unit in settings.recipe.units] or [settings.recipe.web_server.unit]


def app_config_files(settings: Settings) -> list[str]:
    """The recipe's own files on the server: the app's service and its configuration."""
    return [for_app(file.path, settings) for file in settings.recipe.files]


def generate_locally(settings: Settings) -> AppSecrets:
    """Secrets for a render or rehearsal on this machine, or the ones the teacher chose."""
    chosen = settings.chosen_secrets
    return AppSecrets(
        **{
            rule.field: chosen.value(rule) or generated(rule.length)
            for rule in rules_for(settings.database is not None)
        }
    )


def database_url(settings: Settings, app_secrets: AppSecrets) -> str:
    """The SQLAlchemy URL of the app's database ('' without one): user and database are
    named after the app, on this server (localhost)."""
    engine = settings.database
    if engine is None:
        return ""
    user = settings.app.name
    password = quote(app_secrets.database_password, safe="")
    return f"{engine.url_scheme}://{user}:{password}@localhost:{engine.port}/{user}{engine.url_query}"
