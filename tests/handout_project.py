"""A stand-in project for `class handout`'s tests: class-demo's stack file (with the settings
a test changes), its roster and a people file beside it, and its outputs as the real program
makes them under mocks, each student with a key and a start link of their own."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from flasklab import roster as roster_module
from flasklab import stacks
from flasklab.classroom import outputs
from flasklab.people import Person, people_path, write_people
from flasklab.settings import PROJECT_DIR

STACK = "class-demo"
STUDENTS = ("ana", "ben", "carla")
PEOPLE = {
    "ana": Person("ana", "Ana Álvarez Ñúñez", "ana.alvarez@school.example"),
    "ben": Person("ben", "Benjamin Berg", "ben.berg@school.example"),
    "carla": Person("carla", "Carla Castro", "carla.castro@school.example"),
}


def key_of(student: str) -> str:
    body = f"key-body-of-{student}-Zq8"
    return f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"


def link_of(student: str) -> str:
    return f"https://start-{student}.lambda-url.eu-west-1.on.aws/?token=token-of-{student}-W3x"


@dataclass
class Project:
    root: Path
    outputs_file: Path

    def stack(self, **settings: Any) -> None:
        """class-demo's stack file, with these flasklab settings changed."""
        document = yaml.safe_load((PROJECT_DIR / "stacks" / f"Pulumi.{STACK}.yaml").read_text())
        for key, value in settings.items():
            document["config"][f"flasklab:{key}"] = value
        (self.root / "stacks" / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(document))

    @property
    def people_file(self) -> Path:
        return people_path(self.root / "rosters" / f"{STACK}.csv")

    def people(self, people: list[Person]) -> None:
        write_people(self.people_file, people)

    def outputs(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.outputs_file.read_text())
        return loaded

    def save_outputs(self, document: dict[str, Any]) -> None:
        self.outputs_file.write_text(json.dumps(document))

    def ip_of(self, student: str) -> str:
        ip: str = self.outputs()[outputs.STUDENTS][student][outputs.PUBLIC_IP]
        return ip


def make_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: Path) -> Project:
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    (root / "rosters").mkdir()
    shutil.copy(PROJECT_DIR / "rosters" / f"{STACK}.csv", root / "rosters")
    monkeypatch.setattr(stacks, "STACKS_DIR", root / "stacks")
    monkeypatch.setattr(outputs, "STACKS_DIR", root / "stacks")
    monkeypatch.setattr(roster_module, "PROJECT_DIR", root)
    project = Project(root, saved)
    project.stack()
    project.people(list(PEOPLE.values()))
    document = project.outputs()
    # Each student their own key, address and start link: a page holding another's shows.
    document[outputs.SSH_PRIVATE_KEYS] = {student: key_of(student) for student in STUDENTS}
    document[outputs.START_LINKS] = {student: link_of(student) for student in STUDENTS}
    for number, student in enumerate(STUDENTS, start=11):
        entry = document[outputs.STUDENTS][student]
        address = f"198.51.100.{number}"
        for name in (outputs.HOSTS_LINE, outputs.SSH_COMMAND, outputs.URL):
            entry[name] = entry[name].replace(entry[outputs.PUBLIC_IP], address)
        entry[outputs.PUBLIC_IP] = address
    project.save_outputs(document)
    return project
