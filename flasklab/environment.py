"""What to say when flasklab runs from a Python without its packages.

The `flasklab` command and `python -m flasklab` need the project's virtualenv (`.venv`,
made by scripts/setup.sh, or by `pulumi install`/`pulumi up`: Pulumi.yaml points Pulumi's
Python at the same one). Run from another Python (the system's, say), an import of
a third-party package fails; this turns that into the commands to run instead of a
traceback. Standard library only: it runs exactly when the packages are missing.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import NoReturn

PROJECT_DIR = Path(__file__).resolve().parent.parent
VIRTUALENV = ".venv"  # Pulumi.yaml's runtime option `virtualenv` names the same folder


def missing_package_message(package: str, argv: list[str]) -> str:
    venv = PROJECT_DIR / VIRTUALENV
    again = shlex.join([f"{VIRTUALENV}/bin/flasklab", *argv])
    made = (venv / "bin" / "flasklab").exists()
    lines = [
        f"flasklab needs its Python packages, and this Python ({sys.executable}) lacks {package}.",
    ]
    if not made:
        lines += [
            "Make the project's virtualenv once, in the project folder:",
            "  bash scripts/setup.sh   (Debian, as root: also installs what rehearsals need)",
            f"  or: python3 -m venv {VIRTUALENV} && {VIRTUALENV}/bin/pip install -e '.[pulumi]'",
            "then run flasklab from it:",
        ]
    else:
        lines.append("Run flasklab from the project's virtualenv:")
    lines += [f"  {again}", f"  (or `source {VIRTUALENV}/bin/activate`, then flasklab ...)"]
    return "\n".join(lines)


def exit_for_missing_package(error: ModuleNotFoundError) -> NoReturn:
    """Exit 2 saying what to run, for a third-party package missing; a module of flasklab's
    own missing is a bug, and raises as it is."""
    package = (error.name or "").partition(".")[0]
    if not package or package == "flasklab":
        raise error
    print(missing_package_message(package, sys.argv[1:]), file=sys.stderr)
    raise SystemExit(2)
