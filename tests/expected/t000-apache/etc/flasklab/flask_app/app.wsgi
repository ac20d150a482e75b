# Written by flasklab for stack t000-apache (recipe apache-modwsgi); change the stack's config rather than this file.
# The WSGI entry file of flask_app: mod_wsgi calls `application`.
# It loads the app's settings from /etc/flasklab/flask_app/env (which Apache cannot pass on),
# then imports wsgi:app from /var/www/flask_app.
import os
import shlex
import sys

with open("/etc/flasklab/flask_app/env", encoding="utf-8") as env_file:
    for line in env_file:
        for assignment in shlex.split(line, comments=True):
            name, _, value = assignment.partition("=")
            os.environ.setdefault(name, value)

sys.path.insert(0, "/var/www/flask_app")
from wsgi import app as application  # noqa: E402, F401
