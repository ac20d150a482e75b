"""Strings the server, the templates, the probes and the sample app must agree on, in one
place. Templates get this module as the Jinja global `contract`; the probes and the
rehearsal import it; tests/test_contract.py checks the sample app against it (the app
runs on the server, where flasklab is not installed, so it keeps its own copies).
"""

from __future__ import annotations

# The deploy script marks each step in /var/log/cloud-init-output.log with this prefix;
# reports find the failing step by it.
STEP_MARKER = "==> flasklab step: "
# What first boot had to do or could not do that the teacher should know of (packages it
# built from source, pins too old for the release's Python): the deploy script prints
# such lines with this prefix, and flasklab-status, the rehearsal and `pulumi up` show them.
NOTE_MARKER = "==> flasklab note: "
# The note's words when the app's packages had to be compiled, and when even that failed.
BUILT_FROM_SOURCE = "built from source: "
CANNOT_BUILD = "cannot be built for Python "

# What YAML (cloud-init) and Python take for line breaks, not only \n: no one-line value
# may hold them, or it becomes several lines on the server.
LINE_BREAKS = ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\0")

# Headers every site sends (Nginx and Apache), errors included.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# HTTPS sites: browsers keep to HTTPS for a year.
HSTS_MAX_AGE = 31_536_000
HSTS = f"max-age={HSTS_MAX_AGE}"

# Static files come from the web server itself with this expiry; Flask's own static
# route would say no-cache, so the expiry tells who served a file.
STATIC_EXPIRY_DAYS = 30
STATIC_CACHE_CONTROL = f"max-age={STATIC_EXPIRY_DAYS * 24 * 3600}"

# TLS 1.2 and 1.3 only, with forward-secret AEAD ciphers (Mozilla's "intermediate").
TLS_VERSIONS = ("1.2", "1.3")
TLS_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)

# The folder certbot proves the domain through (http://NAME/.well-known/acme-challenge/),
# and the command that gets the certificate once DNS points at the server.
ACME_WEBROOT = "/var/lib/flasklab/acme"
LETSENCRYPT_COMMAND = "sudo flasklab-letsencrypt"

# What the idle stop (autoStopIdleMinutes) writes to its journal as it powers the server off;
# a rehearsal whose container stopped by itself looks for it.
IDLE_STOP_SAYS = "flasklab-idle-stop: powering off: "

# The sample app (flasklab/sample_app/application.py): its page's heading, a static file
# it ships, what its migration writes, and the ids its database page marks its facts with.
SAMPLE_APP_MARKER = "<h1>Flask app deployed</h1>"
SAMPLE_APP_STATIC_FILE = "style.css"
SAMPLE_APP_MIGRATION_NOTE = "written by the migration (flask init-db)"
SAMPLE_APP_MIGRATE = "flask init-db"
