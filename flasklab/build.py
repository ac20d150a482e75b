"""What a student's server is built from, as one short digest (flasklab.plan.TAG_BUILD and
TAG_CONFIG): its user-data without secrets, the image it boots and its login key.

cloud-init runs the user-data on first boot only, so a server keeps what it was built
from. The instance records that digest when it is created and never changes it in place;
every `pulumi up` records the digest of what the stack's settings would give a new server
now. Two different digests mean a setting or flasklab itself changed the server's build:
`class rebuild` applies it, nothing else replaces the server (components/student_server.py).
Nothing here imports Pulumi.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from functools import cache

from flasklab.app_secrets import rules_for
from flasklab.settings import Settings

# Hex digits kept: a tag to compare, not a secret or a signature.
DIGEST_LENGTH = 12
# `class rebuild` sets it for the one `pulumi up` that makes these students' servers anew:
# their names separated by commas, or ALL (flasklab.classroom.rebuild).
REBUILD_ENV = "FLASKLAB_REBUILD"
ALL = "ALL"


def build_digest(user_data_digest: str, image_label: str, settings: Settings) -> str:
    """The digest of what a new server of these settings is built from. user_data_digest
    is taken without the secrets (flasklab.render.screen_user_data); a secret the teacher
    chose counts through a slow, salted hash of it, so that changing it shows as drift
    while the tag, which more people may read than the user-data, gives no quick way to
    guess it."""
    login_key = settings.key_name or settings.ssh_public_key or "the stack's own key"
    chosen = [
        _secret_mark(value, settings.stack)
        for rule in rules_for(settings.database is not None)
        if (value := settings.chosen_secrets.value(rule))
    ]
    text = "\n".join((user_data_digest, image_label, login_key, *chosen))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]


@cache
def _secret_mark(value: str, stack: str) -> str:
    """scrypt (RFC 7914's interactive cost): once per stack, whatever the class's size."""
    salt = f"flasklab build digest of stack {stack}".encode()
    return hashlib.scrypt(value.encode(), salt=salt, n=2**14, r=8, p=1, dklen=16).hex()


def requested_rebuilds(value: str | None = None) -> frozenset[str]:
    """The students `class rebuild` asked to make anew in this `pulumi up` (REBUILD_ENV)."""
    text = os.environ.get(REBUILD_ENV, "") if value is None else value
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def rebuild_problems(requested: frozenset[str], students: Collection[str]) -> list[str]:
    """Names asked for that are not the stack's students (a one-student stack's is '')."""
    unknown = sorted(requested - set(students) - {ALL})
    if not unknown or "" in students:  # a stack of one student: any request is its server
        return []
    known = ", ".join(sorted(students))
    return [f"{REBUILD_ENV}: {', '.join(unknown)} is not a student of this stack (its students: {known})."]


def is_rebuilt(settings: Settings, requested: frozenset[str]) -> bool:
    """Whether this `pulumi up` makes the server anew: asked for by name, or ALL; a stack of
    one student is rebuilt by any request."""
    if not requested:
        return False
    return ALL in requested or not settings.student or settings.student in requested
