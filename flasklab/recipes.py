"""Recipes as data: which packages, which files (templates), which deploy steps, which
programs serve the app and how the student's login user manages it.

Adding a recipe means adding an entry here and its templates, not a branch in the
renderer, the Pulumi program or the rehearsal. Every string may use {app}, the app's name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerFile:
    """One file the server gets, rendered from the template of the same name.

    `checker` names the tool that validates the rendered file in the tests
    ("nginx", "apache", "systemd", "supervisor", "uwsgi", "sh", "python", "env").
    """

    template: str
    path: str
    mode: str = "0644"
    checker: str | None = None
    owner: str = "root:root"
    # Written once packages are installed and users exist (cloud-init's deferred
    # write_files), or, False, before cloud-init installs any package.
    defer: bool = True


@dataclass(frozen=True)
class Recipe:
    name: str
    tutorial: str
    summary: str
    # How the recipe differs from its tutorial (docs/recipes.md's table says it).
    differences: str
    web_server: WebServer
    packages: tuple[str, ...]
    files: tuple[ServerFile, ...]
    # Fragments of templates/deploy/ that start the app, run in this order by
    # flasklab-deploy on first boot (after the app's install, before the web server's).
    deploy_steps: tuple[str, ...]
    # The program that runs the app ("gunicorn", "uwsgi" or "mod_wsgi") and what
    # pip installs into the app's environment for it.
    app_server: str
    pip_packages: tuple[str, ...]
    # Where the web server reaches the app (gunicorn --bind syntax; nginx takes it as is).
    app_address: str
    # Proof of who serves: every process of the app's user runs `serving_program`
    # and descends from a process named `manager`.
    serving_program: str
    manager: str
    # The student's login user: how it restarts the app, and commands it must be able
    # to run without a password (reading logs, status, restarting).
    restart_command: str
    login_commands: tuple[str, ...]
    # systemd units whose state and journal explain a failure, and log files worth
    # showing then (the web server's and the database's come on top).
    units: tuple[str, ...]
    logs: tuple[str, ...]


@dataclass(frozen=True)
class WebServer:
    """Nginx or Apache: its site files, plain HTTP and HTTPS (rendered from templates that
    both include the app's part), the deploy step that enables one of them, and its logs."""

    name: str
    packages: tuple[str, ...]
    http_site: ServerFile
    https_site: ServerFile
    # Enables the site file named `enabled_site` (deploy/<name>-site.sh.j2).
    deploy_step: str
    reload_command: str
    unit: str
    logs: tuple[str, ...]
    # What it names itself in the Server header (never with a version).
    server_header: str
    # The app's site logs every request to it here, over HTTP and HTTPS (the idle stop
    # reads its time; requests to other names, such as scanners' by IP, go elsewhere).
    access_log: str


@dataclass(frozen=True)
class TlsMode:
    """How a server gets HTTPS (the tls setting)."""

    name: str
    # Where the certificate comes from, in the site files' comments ('' without HTTPS).
    certificate_source: str
    packages: tuple[str, ...]
    # Whether the site answers Let's Encrypt's challenge on port 80 (certbot --webroot).
    acme: bool
    # Which of the web server's site files are written, and which one is enabled on first boot.
    http_site: bool
    https_site: bool
    enabled_at_boot: str  # "http" or "https"
    files: tuple[ServerFile, ...]
    # Deploy steps before the web server's (the certificate it needs) and after it.
    steps_before_site: tuple[str, ...]
    steps_after_site: tuple[str, ...]


@dataclass(frozen=True)
class DatabaseEngine:
    """A database server from Debian, its setup for the app, and how the app reaches it."""

    name: str
    label: str  # as the server names itself in SELECT VERSION()
    packages: tuple[str, ...]
    # SQL that creates the app's database and user, run by the deploy step as the server's admin.
    setup_file: ServerFile
    deploy_step: str
    # What pip installs into the app's environment, and the SQLAlchemy URL's scheme for it.
    driver: str
    url_scheme: str
    port: int
    url_query: str
    unit: str


# Files and steps every recipe shares.
DEPLOY_SCRIPT = ServerFile("flasklab-deploy", "/usr/local/sbin/flasklab-deploy", "0755", "sh")
# flasklab-status runs flasklab/server_status.py, shipped as it is to STATUS_MODULE.
STATUS_COMMAND = ServerFile("flasklab-status", "/usr/local/bin/flasklab-status", "0755", "sh")
STATUS_MODULE = "/usr/local/lib/flasklab/status.py"
APP_ENV_FILE = ServerFile("app.env", "/etc/flasklab/{app}/env", "0640", "env", owner="root:{app}")
BASE_PACKAGES = ("python3-venv", "curl")
# What building the usual course packages from source needs, as their own install docs
# say: installed only when installing the app's packages fails for want of them (a pin with
# no wheel for the release's Python). build-essential and python3-dev: any C/C++ extension
# (greenlet); libpq-dev: psycopg2 (its "Build prerequisites": pg_config, libpq headers);
# default-libmysqlclient-dev and pkg-config: mysqlclient (its README); libffi-dev: cffi;
# libssl-dev: cryptography and pyOpenSSL before their abi3 wheels; libjpeg-dev and zlib1g-dev:
# Pillow's two required libraries; libxml2-dev and libxslt1-dev: lxml.
BUILD_PACKAGES = (
    "build-essential",
    "python3-dev",
    "pkg-config",
    "libpq-dev",
    "default-libmysqlclient-dev",
    "libffi-dev",
    "libssl-dev",
    "libjpeg-dev",
    "zlib1g-dev",
    "libxml2-dev",
    "libxslt1-dev",
)
# apt's retries of a failed download, for cloud-init's installs and the deploy script's:
# written before cloud-init installs the packages (not deferred).
APT_RETRIES = ServerFile("apt-retries.conf", "/etc/apt/apt.conf.d/80flasklab-retries", defer=False)
# Steps before the recipe's own: the app, its environment and settings.
FIRST_STEPS = ("app-source.sh", "python-env.sh", "app-settings.sh")
# The app's migration (appMigrate), after its database and before it starts.
MIGRATE_STEP = "app-migrate.sh"
# autoStopIdleMinutes > 0: a timer powers the server off once nobody has used it for that
# long. Its step comes first, so that a server whose first boot failed stops too.
IDLE_STOP_UNIT = "flasklab-idle-stop.service"
IDLE_STOP_FILES = (
    ServerFile("flasklab-idle-stop", "/usr/local/sbin/flasklab-idle-stop", "0755", "sh"),
    ServerFile(IDLE_STOP_UNIT, f"/etc/systemd/system/{IDLE_STOP_UNIT}", checker="systemd"),
    ServerFile("flasklab-idle-stop.timer", "/etc/systemd/system/flasklab-idle-stop.timer", checker="systemd"),
)
IDLE_STOP_STEP = "idle-stop.sh"

# tls letsencrypt: flasklab-letsencrypt gets the certificate (the teacher may run it too);
# a timer runs it by itself once DNS points at the server, with a back-off.
LETSENCRYPT_FILES = (
    ServerFile("flasklab-letsencrypt", "/usr/local/sbin/flasklab-letsencrypt", "0755", "sh"),
    ServerFile(
        "flasklab-letsencrypt-when-ready", "/usr/local/sbin/flasklab-letsencrypt-when-ready", "0755", "sh"
    ),
    ServerFile(
        "flasklab-letsencrypt.service", "/etc/systemd/system/flasklab-letsencrypt.service", checker="systemd"
    ),
    ServerFile(
        "flasklab-letsencrypt.timer", "/etc/systemd/system/flasklab-letsencrypt.timer", checker="systemd"
    ),
)

NGINX = WebServer(
    name="nginx",
    packages=("nginx",),
    http_site=ServerFile("nginx-site.conf", "/etc/nginx/sites-available/{app}", checker="nginx"),
    https_site=ServerFile("nginx-site-https.conf", "/etc/nginx/sites-available/{app}-https", checker="nginx"),
    deploy_step="nginx-site.sh",
    reload_command="systemctl reload nginx",
    unit="nginx.service",
    logs=("/var/log/nginx/{app}.error.log", "/var/log/nginx/error.log"),
    server_header="nginx",
    access_log="/var/log/nginx/{app}.access.log",
)
APACHE = WebServer(
    name="apache",
    packages=("apache2", "libapache2-mod-wsgi-py3"),
    http_site=ServerFile("apache-site.conf", "/etc/apache2/sites-available/{app}.conf", checker="apache"),
    https_site=ServerFile(
        "apache-site-https.conf", "/etc/apache2/sites-available/{app}-https.conf", checker="apache"
    ),
    deploy_step="apache-site.sh",
    reload_command="systemctl reload apache2",
    unit="apache2.service",
    logs=("/var/log/apache2/{app}.error.log", "/var/log/apache2/error.log"),
    server_header="Apache",
    access_log="/var/log/apache2/{app}.access.log",
)

TLS_MODES: dict[str, TlsMode] = {
    mode.name: mode
    for mode in (
        TlsMode(
            name="none",
            certificate_source="",
            packages=(),
            acme=False,
            http_site=True,
            https_site=False,
            enabled_at_boot="http",
            files=(),
            steps_before_site=(),
            steps_after_site=(),
        ),
        TlsMode(
            name="self-signed",
            certificate_source="a self-signed certificate",
            packages=("openssl",),
            acme=False,
            http_site=False,
            https_site=True,
            enabled_at_boot="https",
            files=(),
            steps_before_site=("tls-self-signed.sh",),
            steps_after_site=(),
        ),
        TlsMode(
            name="letsencrypt",
            certificate_source="Let's Encrypt",
            packages=("certbot",),
            acme=True,
            # HTTP first: the certificate needs DNS to point at the server, which may come later
            # (flasklab-letsencrypt.timer then switches the site to HTTPS).
            http_site=True,
            https_site=True,
            enabled_at_boot="http",
            files=LETSENCRYPT_FILES,
            steps_before_site=(),
            steps_after_site=("letsencrypt.sh",),
        ),
    )
}


def database_setup(template: str) -> ServerFile:
    """The SQL that creates the app's database and user: it holds the password, so root only."""
    return ServerFile(template, "/etc/flasklab/{app}/database-setup.sql", "0600")


DATABASES: dict[str, DatabaseEngine] = {
    engine.name: engine
    for engine in (
        DatabaseEngine(
            name="mariadb",
            label="MariaDB",
            packages=("mariadb-server",),
            setup_file=database_setup("mariadb-setup.sql"),
            deploy_step="mariadb.sh",
            driver="PyMySQL",
            url_scheme="mysql+pymysql",
            port=3306,
            url_query="?charset=utf8mb4",
            unit="mariadb.service",
        ),
        DatabaseEngine(
            name="postgresql",
            label="PostgreSQL",
            packages=("postgresql",),
            setup_file=database_setup("postgresql-setup.sql"),
            deploy_step="postgresql.sh",
            driver="psycopg[binary]",
            url_scheme="postgresql+psycopg",
            port=5432,
            url_query="",
            unit="postgresql.service",
        ),
    )
}

WSGI_ENTRY = ServerFile("app.wsgi", "/etc/flasklab/{app}/app.wsgi", checker="python")
# Written before apt installs Apache, so that its first start already has it.
APACHE_SERVICE = ServerFile("apache2-service.conf", "/etc/systemd/system/apache2.service.d/flasklab.conf")
UWSGI_INI = ServerFile("uwsgi.ini", "/etc/flasklab/{app}/uwsgi.ini", checker="uwsgi")
# Gunicorn under supervisor: its workers end when its master dies.
GUNICORN_CONFIG = ServerFile("gunicorn.conf.py", "/etc/flasklab/{app}/gunicorn.conf.py", checker="python")
SUPERVISOR_PROGRAM = ServerFile(
    "supervisor-program.conf", "/etc/supervisor/conf.d/{app}.conf", checker="supervisor"
)
# Tutorial 002: supervisorctl for members of the group supervisor, without sudo.
SUPERVISOR_SOCKET = ServerFile(
    "supervisor-socket.conf", "/etc/supervisor/conf.d/00-flasklab-socket.conf", checker="supervisor"
)
SYSTEMD_LOGIN_COMMANDS = (
    "journalctl --unit {app} --lines 3 --no-pager --quiet",
    f"tail -n 3 {NGINX.access_log}",
    "sudo -n systemctl restart {app}",
)
SUPERVISOR_LOGIN_COMMANDS = (
    "supervisorctl status {app}",
    "tail -n 3 /var/log/{app}/supervisor.log",
    "supervisorctl restart {app}",
)

NGINX_GUNICORN_SYSTEMD = Recipe(
    name="nginx-gunicorn-systemd",
    tutorial="001",
    summary="Nginx in front of Gunicorn; Gunicorn under systemd on a unix socket",
    differences=(
        "systemd owns the socket (socket activation), so only Nginx (www-data) can connect; "
        "the app runs as its own user, not the login user; other host names get no answer."
    ),
    web_server=NGINX,
    packages=(),
    files=(
        ServerFile("gunicorn.socket", "/etc/systemd/system/{app}.socket", checker="systemd"),
        ServerFile("gunicorn.service", "/etc/systemd/system/{app}.service", checker="systemd"),
    ),
    deploy_steps=("systemd-app.sh",),
    app_server="gunicorn",
    pip_packages=("gunicorn",),
    app_address="unix:/run/{app}.sock",
    serving_program="gunicorn",
    manager="systemd",
    restart_command="sudo systemctl restart {app}",
    login_commands=SYSTEMD_LOGIN_COMMANDS,
    units=("{app}.socket", "{app}.service"),
    logs=(),
)

NGINX_UWSGI_SYSTEMD = Recipe(
    name="nginx-uwsgi-systemd",
    tutorial="002",
    summary="Nginx speaking the uwsgi protocol to uWSGI; uWSGI under systemd",
    differences=(
        "Tutorial 002's Nginx and uWSGI, with systemd instead of supervisor: uWSGI from "
        "Debian (uwsgi-plugin-python3) on localhost:8000, restarted with sudo systemctl."
    ),
    web_server=NGINX,
    packages=("uwsgi-core", "uwsgi-plugin-python3"),
    files=(
        WSGI_ENTRY,
        UWSGI_INI,
        ServerFile("uwsgi.service", "/etc/systemd/system/{app}.service", checker="systemd"),
    ),
    deploy_steps=("systemd-app.sh",),
    app_server="uwsgi",
    pip_packages=(),
    app_address="127.0.0.1:8000",
    serving_program="uwsgi",
    manager="systemd",
    restart_command="sudo systemctl restart {app}",
    login_commands=SYSTEMD_LOGIN_COMMANDS,
    units=("{app}.service",),
    logs=(),
)

NGINX_UWSGI_SUPERVISOR = Recipe(
    name="nginx-uwsgi-supervisor",
    tutorial="002",
    summary="Nginx speaking the uwsgi protocol to uWSGI; uWSGI under supervisor",
    differences=(
        "uWSGI comes from Debian (uwsgi-plugin-python3) rather than a system-wide pip install; "
        "it runs as the app's user with the app's environment as its virtualenv; logs go to "
        "/var/log/<app>/; the login user joins the group supervisor, as in 002."
    ),
    web_server=NGINX,
    packages=("supervisor", "uwsgi-core", "uwsgi-plugin-python3"),
    files=(WSGI_ENTRY, UWSGI_INI, SUPERVISOR_PROGRAM, SUPERVISOR_SOCKET),
    deploy_steps=("supervisor-app.sh",),
    app_server="uwsgi",
    pip_packages=(),
    app_address="127.0.0.1:8000",
    serving_program="uwsgi",
    manager="supervisord",
    restart_command="supervisorctl restart {app}",
    login_commands=SUPERVISOR_LOGIN_COMMANDS,
    units=("supervisor.service",),
    logs=("/var/log/{app}/supervisor.log", "/var/log/supervisor/supervisord.log"),
)

NGINX_GUNICORN_SUPERVISOR = Recipe(
    name="nginx-gunicorn-supervisor",
    tutorial="003",
    summary="Nginx in front of Gunicorn on localhost:8000; Gunicorn under supervisor",
    differences=(
        "The log folder is not world-writable (003 uses chmod 777): it belongs to the app's "
        "user and the group adm; the login user joins the group supervisor, so supervisorctl "
        "works without sudo."
    ),
    web_server=NGINX,
    packages=("supervisor",),
    files=(GUNICORN_CONFIG, SUPERVISOR_PROGRAM, SUPERVISOR_SOCKET),
    deploy_steps=("supervisor-app.sh",),
    app_server="gunicorn",
    pip_packages=("gunicorn",),
    app_address="127.0.0.1:8000",
    serving_program="gunicorn",
    manager="supervisord",
    restart_command="supervisorctl restart {app}",
    login_commands=(*SUPERVISOR_LOGIN_COMMANDS, "tail -n 3 /var/log/{app}/gunicorn-access.log"),
    units=("supervisor.service",),
    logs=(
        "/var/log/{app}/gunicorn-error.log",
        "/var/log/{app}/supervisor.log",
        "/var/log/supervisor/supervisord.log",
    ),
)

APACHE_MODWSGI = Recipe(
    name="apache-modwsgi",
    tutorial="000",
    summary="Apache2 with mod_wsgi in daemon mode",
    differences=(
        "The daemon runs as the app's user (000 uses www-data) with the app's environment as "
        "python-home; the .wsgi entry file is generated (it loads the app's settings first); "
        "Apache serves only the static folder, never the source (000's DocumentRoot is the app)."
    ),
    web_server=APACHE,
    packages=(),
    files=(WSGI_ENTRY, APACHE_SERVICE),
    deploy_steps=(),
    app_server="mod_wsgi",
    pip_packages=(),
    app_address="",
    serving_program="(wsgi:{app})",
    manager="apache2",
    restart_command="sudo systemctl reload apache2",
    login_commands=(
        f"tail -n 3 {APACHE.access_log}",
        "tail -n 3 /var/log/apache2/{app}.error.log",
        "sudo -n systemctl reload apache2",
    ),
    units=(),
    logs=(),
)

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        NGINX_GUNICORN_SYSTEMD,
        NGINX_GUNICORN_SUPERVISOR,
        NGINX_UWSGI_SUPERVISOR,
        NGINX_UWSGI_SYSTEMD,
        APACHE_MODWSGI,
    )
}


@dataclass(frozen=True)
class Stage:
    """How far the deploy goes (the stage setting): exercises hand out a server part-way
    through its tutorial, and `class grade` scores what the student did after."""

    name: str
    # What the student still does, in docs/exercises.md's words.
    leaves: str
    # The recipe's packages (web server, app server, manager, database, TLS tools).
    installs_packages: bool
    # The app's code, its system user, environment, settings, database and migration.
    installs_app: bool
    # The recipe's own files and steps: the app's service, the web server's site, HTTPS,
    # and the deploy's last check that every name answers.
    serves_app: bool
    # One fault of flasklab/faults.py is applied after the finished deploy (a break-fix
    # exercise), so nothing is expected to answer once first boot is over.
    breaks: bool = False

    @property
    def answers_after_boot(self) -> bool:
        """Whether the server serves the app once first boot is over (what pulumi up's wait
        and a rehearsal ask of it); an exercise's server need not."""
        return self.serves_app and not self.breaks


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("finished", "nothing: the server serves the app", True, True, True),
        Stage(
            "app",
            "the app's service (systemd unit or supervisor program) and the web server's site",
            installs_packages=True,
            installs_app=True,
            serves_app=False,
        ),
        Stage(
            "bare",
            "everything: packages, the app's code, user and virtualenv, its service and the site",
            installs_packages=False,
            installs_app=False,
            serves_app=False,
        ),
        Stage(
            "broken",
            "finding and fixing the one fault applied after the finished deploy (docs/faults.md)",
            installs_packages=True,
            installs_app=True,
            serves_app=True,
            breaks=True,
        ),
    )
}
# With stage bare and the sample app, its code waits here for the student to copy it to
# the app's folder (the tutorials clone or write it; with appRepo the student clones it).
SAMPLE_APP_SOURCE = "/usr/local/share/flasklab/sample-app"
# flasklab-check runs flasklab/server_check.py, shipped as it is, with the server's rubric.
CHECK_COMMAND = ServerFile("flasklab-check", "/usr/local/bin/flasklab-check", "0755", "sh")
CHECK_MODULE = "/usr/local/lib/flasklab/check.py"
CHECK_SPEC = "/usr/local/lib/flasklab/check-spec.json"
# Stage broken: the fault's script (templates/faults/), which flasklab-deploy runs once the
# app serves and then deletes, its output discarded: the student meets the fault by its
# effects, not by a file that names it. /run is a tmpfs, gone at the next boot anyway.
FAULT_SCRIPT = "/run/flasklab-exercise.sh"
