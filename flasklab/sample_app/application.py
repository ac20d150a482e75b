"""flasklab's sample app: the page a student sees once the server is deployed.

Its settings come from the environment (the env file flasklab writes): GREETING from
appEnv, SECRET_KEY, DATABASE_URL when the stack has a database, and FLASK_* settings
such as FLASK_SESSION_COOKIE_SECURE when the site is served over HTTPS.
"""

import os
import platform
import socket

import click
from flask import Flask, abort, jsonify, request, session
from markupsafe import escape
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, func, select, text

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY")
app.config.from_prefixed_env()

metadata = MetaData()
notes = Table(
    "flasklab_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False, server_default=func.now()),
)
MIGRATION_NOTE = "written by the migration (flask init-db)"
_engine = None


def database():
    """The engine of DATABASE_URL, or None when the stack has no database."""
    global _engine
    url = os.environ.get("DATABASE_URL")
    if not url:
        return None
    if _engine is None:
        _engine = create_engine(url, pool_pre_ping=True)
    return _engine


@app.cli.command("init-db")
def init_db():
    """The app's migration: create its table and its first row (run once, by appMigrate)."""
    engine = database()
    if engine is None:
        raise click.ClickException("DATABASE_URL is not set: the stack has no database.")
    metadata.create_all(engine)
    with engine.begin() as connection:
        if connection.execute(select(func.count()).select_from(notes)).scalar_one() == 0:
            connection.execute(notes.insert().values(text=MIGRATION_NOTE))
    click.echo(f"init-db: table {notes.name} is ready in {engine.url.render_as_string(hide_password=True)}")


PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="/static/style.css">
</head>
<body>
{body}
</body>
</html>
"""

INDEX = """  <h1>Flask app deployed</h1>
  <p>Aplicación desplegada · Applikationen är driftsatt</p>
  <p id="greeting">{greeting}</p>
  <dl>
    <dt>Host asked for</dt><dd>{host}</dd>
    <dt>Served by</dt><dd>{server}</dd>
    <dt>Python</dt><dd>{python}</dd>
    <dt>Server</dt><dd>{hostname}</dd>
    <dt>Visits in this browser session</dt><dd id="visits">{visits}</dd>
    <dt>Database</dt><dd>{database}</dd>
  </dl>"""


@app.route("/")
def index():
    """Index page: shows which name the browser used and what serves the app."""
    # The session cookie is signed with SECRET_KEY (and Secure over HTTPS).
    session["visits"] = session.get("visits", 0) + 1
    body = INDEX.format(
        # GREETING comes from the app's settings (appEnv), through its env file.
        greeting=escape(os.environ.get("GREETING", "No GREETING in the app's settings.")),
        host=escape(request.headers.get("Host", "")),
        server=escape(request.environ.get("SERVER_SOFTWARE", "a WSGI server")),
        python=platform.python_version(),
        hostname=socket.gethostname(),
        visits=session["visits"],
        database='<a href="/db">see it work</a>' if database() else "none (the stack's database setting)",
    )
    return PAGE.format(title="Flask app deployed", body=body)


@app.route("/db")
def database_page():
    """Writes a row and reads the table back: the database works."""
    engine = database()
    if engine is None:
        abort(404, "This server has no database: set the stack's database setting.")
    with engine.begin() as connection:
        connection.execute(notes.insert().values(text=f"visit from {request.headers.get('Host', '')}"))
        version = connection.execute(text("SELECT VERSION()")).scalar_one()
        rows = connection.execute(select(notes).order_by(notes.c.id)).all()
    items = "\n".join(f"    <li>{row.id}: {escape(row.text)} ({row.created_at:%Y-%m-%d %H:%M:%S})</li>" for row in rows)
    body = (
        f"  <h1>The database works</h1>\n"
        f'  <p id="server">{escape(version)}</p>\n'
        f'  <p id="count">{len(rows)} rows in {notes.name}; this visit wrote the last one.</p>\n'
        f"  <ol>\n{items}\n  </ol>"
    )
    return PAGE.format(title="Database", body=body)


def note_json(row):
    return {"id": row.id, "text": row.text, "created_at": row.created_at.isoformat()}


@app.route("/api/notes", methods=["GET", "POST"])
def api_notes():
    """A JSON REST resource, as in tutorial 004: list notes, or add one with {"text": ...}."""
    engine = database()
    if engine is None:
        return jsonify(error="this server has no database (the stack's database setting)"), 503
    if request.method == "POST":
        payload = request.get_json(silent=True) or {}
        note_text = payload.get("text")
        if not isinstance(note_text, str) or not 0 < len(note_text) <= 200:
            return jsonify(error='send JSON like {"text": "..."} with 1 to 200 characters'), 400
        with engine.begin() as connection:
            new_id = connection.execute(notes.insert().values(text=note_text)).inserted_primary_key[0]
            row = connection.execute(select(notes).where(notes.c.id == new_id)).one()
        return jsonify(note_json(row)), 201, {"Location": f"/api/notes/{new_id}"}
    with engine.connect() as connection:
        rows = connection.execute(select(notes).order_by(notes.c.id)).all()
    return jsonify([note_json(row) for row in rows])


@app.route("/api/notes/<int:note_id>", methods=["GET", "PUT", "DELETE"])
def api_note(note_id):
    """One note: read it, change its text, or delete it."""
    engine = database()
    if engine is None:
        return jsonify(error="this server has no database (the stack's database setting)"), 503
    with engine.begin() as connection:
        row = connection.execute(select(notes).where(notes.c.id == note_id)).one_or_none()
        if row is None:
            return jsonify(error=f"no note {note_id}"), 404
        if request.method == "DELETE":
            connection.execute(notes.delete().where(notes.c.id == note_id))
            return "", 204
        if request.method == "PUT":
            note_text = (request.get_json(silent=True) or {}).get("text")
            if not isinstance(note_text, str) or not 0 < len(note_text) <= 200:
                return jsonify(error='send JSON like {"text": "..."} with 1 to 200 characters'), 400
            connection.execute(notes.update().where(notes.c.id == note_id).values(text=note_text))
            row = connection.execute(select(notes).where(notes.c.id == note_id)).one()
    return jsonify(note_json(row))


@app.route("/health")
def health():
    """A JSON answer for scripts and monitoring."""
    return jsonify(status="ok", host=request.headers.get("Host", ""), database=bool(database()))
