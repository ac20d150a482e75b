# Written by flasklab for stack t003-supervisor (recipe nginx-gunicorn-supervisor); change the stack's config rather than this file.
# Gunicorn's settings file for microblog (its command line holds the rest).
# supervisor restarts Gunicorn when its master process dies, but leaves the master's
# workers running: they would keep 127.0.0.1:8000 bound, so the new master could not
# listen. Each worker asks Linux for SIGTERM when the master dies (PR_SET_PDEATHSIG),
# then finishes its request and exits.
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def post_fork(server, worker):
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != server.pid:  # the master died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
