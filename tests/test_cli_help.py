"""Every command's --help says what it does; the rehearsal says what it needs and when its
container is gone."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from flasklab.__main__ import main, parser
from flasklab.rehearsal import report


def subcommands(command: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from subcommands(sub, (*path, name))


def test_every_subcommand_has_a_description():
    found = dict(subcommands(parser()))
    assert {("rehearse",), ("class", "sheet"), ("class", "roster", "import")} <= found.keys()
    missing = [" ".join(path) for path, command in found.items() if not (command.description or "").strip()]
    assert missing == []


@pytest.mark.parametrize("path", [path for path, _ in subcommands(parser())])
def test_help_prints_the_description(path, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    assert exited.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert " ".join(dict(subcommands(parser()))[path].description.split()) in printed


def test_rehearse_help_says_it_needs_root_on_debian(capsys):
    with pytest.raises(SystemExit):
        main(["rehearse", "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert "Needs root on a Debian machine" in printed and "--keep" in printed


HEADING = report.Heading(
    stack="dev",
    codename="trixie",
    url="http://practica_flask/",
    address="10.77.0.2",
    hosts_line="10.77.0.2 practica_flask",
    try_it="curl --resolve practica_flask:80:10.77.0.2 http://practica_flask/",
    blame="  (none)",
)


def test_a_removed_containers_try_it_line_says_it_is_gone_and_how_to_keep_it():
    removed = report.render(HEADING, report.Outcome(cloud_init_seconds=1, first_response_seconds=1))
    [line] = [line for line in removed.splitlines() if line.startswith("try it:")]
    assert "the container is removed after this report; rehearse with --keep" in line
    kept = report.render(
        report.Heading(**{**HEADING.__dict__, "kept": True}), report.Outcome(cloud_init_seconds=1)
    )
    [line] = [line for line in kept.splitlines() if line.startswith("try it:")]
    assert line.split(":", 1)[1].strip() == HEADING.try_it
