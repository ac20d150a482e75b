# Written by flasklab for stack t002-uwsgi (recipe nginx-uwsgi-supervisor); change the stack's config rather than this file.
# The WSGI entry file of hellopython: uWSGI calls `application`.
# It loads the app's settings from /etc/flasklab/hellopython/env (which the process manager passes on too),
# then imports wsgi:app from /var/www/hellopython.
import os
import shlex
import sys

with open("/etc/flasklab/hellopython/env", encoding="utf-8") as env_file:
    for line in env_file:
        for assignment in shlex.split(line, comments=True):
            name, _, value = assignment.partition("=")
            os.environ.setdefault(name, value)

sys.path.insert(0, "/var/www/hellopython")
from wsgi import app as application  # noqa: E402, F401
