"""Files only the teacher's account may read: the students' private keys and the folders
holding them (`class sheet`'s keys/, `class handout`'s folders), and the names they take
from the outputs' students."""

from __future__ import annotations

import os
from pathlib import Path

from flasklab.classroom.outputs import OutputsError


def student_file_name(student: str) -> str:
    """The student's id, checked fit to name a file or a folder: flasklab's ids are letters,
    digits and -, so anything else means the outputs are not flasklab's."""
    if student in ("", ".", "..") or Path(student).name != student:
        raise OutputsError(
            f"student {student!r} in the outputs cannot name its key file: these outputs are "
            f"not flasklab's (its student names are letters, digits and -). Save the stack's own with "
            f"`pulumi stack output --json --show-secrets`."
        )
    return student


def private_folder(path: Path) -> Path:
    """path (and its missing parents), 0700 however it was before."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """text in path, 0600: created so from the start, never readable by others, even briefly."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


def key_text(key: str) -> str:
    """A private key as ssh reads it: ending in a newline (OpenSSH refuses it otherwise)."""
    return key if key.endswith("\n") else key + "\n"
