"""The fault catalogue of stage `broken`: a finished server with one realistic fault,
applied after the finished deploy, for the student to find and fix (docs/faults.md).

A fault is data: its name (the `fault` setting's value), the recipes it applies to and
whether it needs the database and the sample app's /db page, its change (the script
templates/faults/NAME.sh.j2, run as root once by flasklab-deploy and then deleted), and
the rubric's checkpoints it makes fail (flasklab.rubric; where a checkpoint is not in a
server's rubric it does not count). What the student sees and the fix are texts in
flasklab/rubric_texts/ under `fault.NAME`, in every language, for the teacher.

When the `fault` setting is empty, each student gets one chosen from a seed of the stack
and the student: the same on every run (a rebuild gives the same fault), spread over the
faults that apply. Nothing here imports the settings: they check the name with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flasklab.recipes import RECIPES

ALL_RECIPES = tuple(RECIPES)
# Recipes where the web server reaches the app on a socket or port (not mod_wsgi's).
PROXIED = tuple(name for name, recipe in RECIPES.items() if recipe.app_address)


@dataclass(frozen=True)
class Fault:
    name: str
    recipes: tuple[str, ...]
    # The rubric's checkpoints it makes fail, the one that names it first.
    fails: tuple[str, ...]
    # Only with a database and the sample app (whose /db page shows the database's error).
    needs_database: bool = False
    # What also fails under one manager (Recipe.manager): with mod_wsgi the app's daemon is
    # defined in the site itself.
    also_fails: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def failing(self, manager: str, rubric_keys: set[str]) -> set[str]:
        """The checkpoints of a server's rubric this fault makes fail."""
        extra = [key for name, keys in self.also_fails if name == manager for key in keys]
        return {*self.fails, *extra} & rubric_keys

    @property
    def template(self) -> str:
        return f"faults/{self.name}.sh"

    @property
    def text_key(self) -> str:
        """Its entry in flasklab/rubric_texts/: title = what the student sees, hint = the fix."""
        return f"fault.{self.name}"

    def applies(self, recipe: str, database: bool, sample_app: bool) -> bool:
        return recipe in self.recipes and (not self.needs_database or (database and sample_app))


# What fails when nothing reaches the app through the web server by its names.
_THROUGH_THE_SITE = ("answers_by_name", "database_page")

FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "site-not-enabled",
            ALL_RECIPES,
            ("site_enabled", *_THROUGH_THE_SITE, "static_files", "https"),
            also_fails=(("apache2", ("service_defined", "app_user", "debug_off")),),
        ),
        Fault("socket-mismatch", PROXIED, ("answers_locally", *_THROUGH_THE_SITE)),
        Fault("unit-not-enabled", ALL_RECIPES, ("service_enabled",)),
        Fault("app-owner", ALL_RECIPES, ("app_owner",)),
        Fault("requirements-missing", ALL_RECIPES, ("virtualenv",)),
        Fault("database-password", ALL_RECIPES, ("database_page",), needs_database=True),
    )
}


def applicable(recipe: str, database: bool, sample_app: bool) -> list[str]:
    """The faults a server of this recipe can get, in the catalogue's order."""
    return [name for name, fault in FAULTS.items() if fault.applies(recipe, database, sample_app)]


def seeded_choice(stack: str, student: str, names: list[str]) -> str:
    """One of `names` from a digest of the stack and the student: the same on every run,
    different students spread over them. Not a secret: nobody can change it but the
    teacher, and the student cannot read it off the server."""
    digest = hashlib.sha256(f"flasklab fault of {stack}/{student}".encode()).digest()
    return names[int.from_bytes(digest[:8], "big") % len(names)]
