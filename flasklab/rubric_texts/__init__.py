"""The rubric's texts for students and teachers, one data file per language (en.json,
es.json, sv.json: the seeds' languages and English). Each checkpoint's key has a title
(what is checked) and a hint (what to do when it fails); both may name the checkpoint's
arguments in braces ({app}, {address}, ...), filled in by flasklab.rubric."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

TEXTS_DIR = Path(__file__).resolve().parent
LANGUAGES = ("en", "es", "sv")


@cache
def texts(language: str) -> dict[str, dict[str, str]]:
    """key -> {"title": ..., "hint": ...} in `language`."""
    loaded: dict[str, dict[str, str]] = json.loads(
        (TEXTS_DIR / f"{language}.json").read_text(encoding="utf-8")
    )
    return loaded
