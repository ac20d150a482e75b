"""The students' handouts' texts (`class handout`: the page and the mail), one data file per
language, as the rubric's are (flasklab/rubric_texts/): en.json, es.json, sv.json. Each text
may name values in braces ({name}, {url}, ...), which flasklab.classroom.handout fills in;
every language has every key with the same braces (tests/test_class_handout.py)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flasklab.rubric_texts import LANGUAGES

TEXTS_DIR = Path(__file__).resolve().parent

__all__ = ["LANGUAGES", "TEXTS_DIR", "texts"]


@cache
def texts(language: str) -> dict[str, str]:
    """key -> text in `language` (one of LANGUAGES, which the language setting checks)."""
    loaded: dict[str, str] = json.loads((TEXTS_DIR / f"{language}.json").read_text(encoding="utf-8"))
    return loaded
