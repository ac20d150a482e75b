"""flasklab's sample app: the page a student sees once the server is deployed."""

import os
import platform
import socket

from flask import Flask, jsonify, request
from markupsafe import escape

app = Flask(__name__)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Flask app deployed</title>
  <link rel="stylesheet" href="/static/style.css">
</head>
<body>
  <h1>Flask app deployed</h1>
  <p>Aplicación desplegada · Applikationen är driftsatt</p>
  <p id="greeting">{greeting}</p>
  <dl>
    <dt>Host asked for</dt><dd>{host}</dd>
    <dt>Served by</dt><dd>{server}</dd>
    <dt>Python</dt><dd>{python}</dd>
    <dt>Server</dt><dd>{hostname}</dd>
  </dl>
</body>
</html>
"""


@app.route("/")
def index():
    """Index page: shows which name the browser used and what serves the app."""
    return PAGE.format(
        # GREETING comes from the app's settings (appEnv), through its env file.
        greeting=escape(os.environ.get("GREETING", "No GREETING in the app's settings.")),
        host=escape(request.headers.get("Host", "")),
        server=request.environ.get("SERVER_SOFTWARE", "a WSGI server"),
        python=platform.python_version(),
        hostname=socket.gethostname(),
    )


@app.route("/health")
def health():
    """A JSON answer for scripts and monitoring."""
    return jsonify(status="ok", host=request.headers.get("Host", ""))
