"""The docs against the code: the MkDocs site builds with --strict, every flasklab command
in the README and docs/ parses with flasklab's own parser, every `pulumi config set` names
a real setting, and the README's term checklist is followed, command by command, as far
as it runs here: the roster imported for real from an LMS export, `pulumi preview` and
`pulumi up` under Pulumi's mocks, every other flasklab command parsed. The commands are
read from the README itself, so the test breaks when the README and the code drift apart."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from flasklab.__main__ import main, parser
from flasklab.aws_regions import ec2_regions
from flasklab.settings import PROJECT_DIR

README = PROJECT_DIR / "README.md"
DOCS = PROJECT_DIR / "docs"
CHECKLIST_HEADING = "## A class, term by term"
# Words the docs write for a value to fill in, and a value of the right type for each.
PLACEHOLDER_VALUES = {"N": "2"}
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", ")", "2>", "&"}
FLASKLAB_SETTINGS = set(yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"])
# Pulumi's own settings the docs set.
PROVIDER_SETTINGS = {"aws:region"}
# The order a term goes in: each of these first appears in the checklist after the one before.
TERM_ORDER = [
    "pulumi login",
    "pulumi stack init",
    "pulumi config set aws:region",
    "pulumi config set course",
    "flasklab class roster import",
    "pulumi config set roster",
    "pulumi preview",
    "pulumi up",
    "flasklab class handout",
    "flasklab class check",
    "flasklab class stop",
    "flasklab class grade",
    "pulumi destroy --run-program",
    "flasklab class sweep",
]


class ParseError(Exception):
    pass


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def fenced_blocks(text: str) -> list[str]:
    """The ```sh blocks' bodies, indentation (of a list item's block) removed."""
    return [textwrap.dedent(body) for body in re.findall(r"^[ \t]*```sh\n(.*?)^[ \t]*```", text, re.S | re.M)]


def without_fenced_blocks(text: str) -> str:
    return re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.S | re.M)


def inline_spans(text: str) -> list[str]:
    """`code` spans of the prose, a span broken over lines joined again."""
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", without_fenced_blocks(text))]


def shell_commands(block: str, prose: bool = False) -> list[list[str]]:
    """A block's commands as words, comments dropped, cut at each shell operator. A
    span of prose that is no shell (a lone quote) has none."""
    commands: list[list[str]] = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        try:
            tokens = [*lexer, ";"]
        except ValueError:
            if prose:
                continue
            raise
        for token in tokens:
            if token in SHELL_OPERATORS or set(token) <= set(";&|()<>"):
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(token)
    return commands


def flasklab_arguments(words: list[str]) -> list[str] | None:
    """The arguments of a `flasklab ...` (or `.venv/bin/flasklab ...`) or `python -m
    flasklab ...` command; None for any other command (the server's flasklab-status and
    flasklab-check are other programs)."""
    for at, word in enumerate(words):
        as_program = (word == "flasklab" and at == 0) or word.endswith("/bin/flasklab")
        as_module = word == "flasklab" and at >= 1 and words[at - 1] == "-m"
        if as_program or as_module:
            return words[at + 1 :]
    return None


OPTIONAL_PART = r"(?<!\S)\[([^\[\]]*)\]"  # a synopsis's [--student ana], not a path's [0]


def variants(line: str) -> list[str]:
    """A synopsis with [optional] parts: without them, and with them all."""
    if not re.search(OPTIONAL_PART, line):
        return [line]
    return [re.sub(OPTIONAL_PART, "", line), re.sub(OPTIONAL_PART, r"\1", line)]


def documented_commands() -> list[tuple[str, list[str], bool]]:
    """(where, flasklab's arguments, complete) for every flasklab command in the README and
    docs/: complete for a block's command, which must parse whole; an inline span may name
    a command without its required options (`class cost` adds a term up)."""
    found = []
    for path in doc_files():
        text = path.read_text()
        name = path.relative_to(PROJECT_DIR)
        for block in fenced_blocks(text):
            for line in block.splitlines():
                for variant in variants(line):
                    for words in shell_commands(variant):
                        arguments = flasklab_arguments(words)
                        if arguments is not None:
                            found.append((f"{name}: {line.strip()}", arguments, True))
        for span in inline_spans(text):
            for variant in variants(span):
                for words in shell_commands(variant, prose=True):
                    arguments = flasklab_arguments(words)
                    if arguments is not None:
                        found.append((f"{name}: `{span}`", arguments, False))
    return found


def parse(arguments: list[str]) -> argparse.Namespace:
    """flasklab's own parser, its errors raised instead of exiting."""
    words = [PLACEHOLDER_VALUES.get(word, word) for word in arguments if word != "..."]
    return parser().parse_args(words)


@pytest.fixture
def raising_parser(monkeypatch):
    def error(self, message):
        raise ParseError(message)

    monkeypatch.setattr(argparse.ArgumentParser, "error", error)


REQUIRED = "the following arguments are required: "
ONE_REQUIRED = "one of the arguments "


def unparsed(arguments: list[str], complete: bool) -> str | None:
    """Why the command does not parse, or None. An inline mention may leave out what is
    required: it is filled in with stand-ins, and the rest must still parse (a misspelt
    option is refused as in a whole command)."""
    if not arguments or (arguments[-1] == "..." and len(arguments) <= 2):
        return None  # `flasklab ...`, `flasklab class ...`: the command in general
    words = list(arguments)
    for _ in range(5):
        try:
            parse(words)
            return None
        except ParseError as error:
            message = str(error)
            if complete or not message.startswith((REQUIRED, ONE_REQUIRED)):
                return message
            if message.startswith(ONE_REQUIRED):  # one of --stack --course: the first
                words += [message.removeprefix(ONE_REQUIRED).split()[0], "x"]
                continue
            for name in message.removeprefix(REQUIRED).split(", "):
                words += [name.split("/")[0], "x"] if name.startswith("-") else ["x"]
    return f"still incomplete: {shlex.join(words)}"


def test_the_docs_name_flasklab_commands_everywhere_the_test_looks():
    """The collector finds what it should: a checklist command, a docs/ block and a span."""
    found = {where.partition(":")[0] for where, _, _ in documented_commands()}
    assert {"README.md", "docs/roster.md", "docs/term.md", "docs/between-classes.md"} <= found


def test_every_flasklab_command_in_the_readme_and_docs_parses(raising_parser):
    problems = []
    for where, arguments, complete in documented_commands():
        problem = unparsed(arguments, complete)
        if problem:
            problems.append(f"{where}\n    {problem}")
    assert problems == [], "\n".join(problems)


def test_a_misspelt_command_or_option_does_not_parse(raising_parser):
    """What the test above relies on: the parser refuses a wrong word, also in a span."""
    assert unparsed(["class", "chek", "--stack", "a"], complete=True)
    assert unparsed(["class", "check", "--stak", "a"], complete=False)
    assert unparsed(["class", "check"], complete=True)
    assert unparsed(["class", "check"], complete=False) is None


def config_keys(words: list[str]) -> list[str]:
    """The settings a `pulumi config set ...` or a `--set KEY=VALUE` names."""
    keys = []
    if words[:3] == ["pulumi", "config", "set"]:
        rest = words[3:]
        while rest and rest[0].startswith("-"):
            flag = rest.pop(0)
            if flag in {"--stack", "-s", "--config-file"} and rest:
                rest.pop(0)
        if rest:
            keys.append(re.split(r"[.\[]", rest[0])[0])
    for at, word in enumerate(words[:-1]):
        if word == "--set":
            keys.append(words[at + 1].partition("=")[0])
    return [key for key in keys if key not in {"KEY", "<key>"}]


def documented_config_keys() -> list[tuple[str, str]]:
    found = []
    for path in doc_files():
        text = path.read_text()
        name = path.relative_to(PROJECT_DIR)
        spans = [variant for span in inline_spans(text) for variant in variants(span)]
        snippets = [(block, False) for block in fenced_blocks(text)] + [(span, True) for span in spans]
        for snippet, prose in snippets:
            for words in shell_commands(snippet, prose):
                found += [(f"{name}: {shlex.join(words)}", key) for key in config_keys(words)]
    return found


def test_every_setting_the_docs_set_is_declared_in_pulumi_yaml():
    found = documented_config_keys()
    assert {"roster", "aws:region", "stopSchedule", "appEnv", "sshPrivateKey"} <= {key for _, key in found}
    unknown = [f"{where}: {key}" for where, key in found if key not in FLASKLAB_SETTINGS | PROVIDER_SETTINGS]
    assert unknown == [], "settings that Pulumi.yaml does not declare:\n" + "\n".join(unknown)


def checklist() -> tuple[list[str], list[list[str]]]:
    """The README's term checklist: its steps' titles and its commands, in order."""
    text = README.read_text()
    start = text.index(CHECKLIST_HEADING)
    section = text[start : text.index("\n## ", start + 1)]
    steps = re.findall(r"^(\d+)\. \*\*(.+?)\*\*", section, re.M)
    assert [int(number) for number, _ in steps] == list(range(1, len(steps) + 1)), "steps misnumbered"
    commands = [words for block in fenced_blocks(section) for words in shell_commands(block)]
    return [title for _, title in steps], commands


def first_index(commands: list[list[str]], start: str) -> int:
    wanted = start.split()
    for at, words in enumerate(commands):
        arguments = flasklab_arguments(words)
        said = ["flasklab", *arguments] if arguments is not None else words
        if said[: len(wanted)] == wanted:
            return at
    raise AssertionError(f"the README's term checklist has no `{start} ...`")


def test_the_readme_stays_short_and_keeps_its_two_local_commands():
    """A teacher reads it top-down; the reference is docs/'s. The two commands for trying
    flasklab and running the tests stay near the top, as they are."""
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    commands = [shlex.join(words) for block in fenced_blocks(text) for words in shell_commands(block)]
    assert commands.index("bash scripts/rehearse.sh") < commands.index("bash scripts/test.sh") < 4
    assert text.index("bash scripts/test.sh") < text.index(CHECKLIST_HEADING)


def test_the_checklist_goes_in_the_order_of_a_term():
    titles, commands = checklist()
    assert len(titles) >= 10
    positions = [first_index(commands, start) for start in TERM_ORDER]
    assert positions == sorted(positions), list(zip(TERM_ORDER, positions, strict=True))


# A Moodle participants export, as a Spanish teacher's Excel saves it (semicolons, cp1252).
MOODLE_EXPORT = [
    ["Username", "First name", "Surname", "Email address"],
    ["ana.garcia", "Ana", "García", "ana.garcia@example.edu"],
    ["jose", "José", "Núñez", "jose.nunez@example.edu"],
    ["bo", "Bo", "Lindqvist", "bo.lindqvist@example.edu"],
]


def write_moodle_export(path: Path) -> None:
    with path.open("w", encoding="cp1252", newline="") as file:
        csv.writer(file, delimiter=";").writerows(MOODLE_EXPORT)


def test_the_readme_term_checklist_runs_up_to_pulumi_up_under_mocks(
    run_program, raising_parser, tmp_path, monkeypatch, capsys
):
    """Each command of the checklist, in order: settings kept as `pulumi config set` keeps
    them, the roster imported for real from a Moodle export, `pulumi preview` and `pulumi up`
    run as the program under mocks, every flasklab command parsed."""
    from flasklab import roster as roster_module
    from flasklab.classroom import roster_import

    project = tmp_path / "project"
    (project / "rosters").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setattr(roster_module, "PROJECT_DIR", project)
    monkeypatch.setattr(roster_import, "ROSTERS_DIR", project / "rosters", raising=False)
    stack, config, region, runs, imported = "", {}, "", [], []
    _, commands = checklist()
    for words in commands:
        arguments = flasklab_arguments(words)
        if words[:3] == ["pulumi", "stack", "init"]:
            stack = words[3]
        elif words[:3] == ["pulumi", "config", "set"]:
            [key] = config_keys(words)
            value = words[-1]
            if key == "aws:region":
                region = value
            else:
                assert key in FLASKLAB_SETTINGS, f"{shlex.join(words)}: no such setting"
                config[key] = value
        elif arguments is not None and arguments[:3] == ["class", "roster", "import"]:
            write_moodle_export(project / arguments[3])
            assert main(arguments) == 0, capsys.readouterr().err
            imported.append(parse(arguments).out or Path("rosters") / f"{Path(arguments[3]).stem}.csv")
        elif arguments is not None:
            assert unparsed(arguments, complete=True) is None, shlex.join(words)
        elif words[:2] in (["pulumi", "preview"], ["pulumi", "up"]):
            assert stack, "the checklist runs pulumi before `pulumi stack init`"
            runs.append(run_program(stack, **config))
    assert region in ec2_regions()
    [roster] = imported
    assert config["roster"] == str(roster), "the roster set is not the one imported"
    roster_text = (project / roster).read_text()
    assert roster_text.split() == ["student", "ana-garcia", "jose", "bo"]
    people = (project / roster).with_name(roster.stem + ".people.csv").read_text(encoding="utf-8")
    assert "jose.nunez@example.edu" in people and "Núñez" in people
    assert len(runs) >= 2, "the checklist has no `pulumi preview` and `pulumi up`"
    for run in runs:
        assert run.errors == []
        assert sorted(run.outputs["students"]) == ["ana-garcia", "bo", "jose"]
        assert len(run.of_type("aws:ec2/instance:Instance")) == 3
        # Names and emails stay in the people file: never in a resource or an output.
        sent = json.dumps([run.resources, run.outputs], default=str)
        for _, _, surname, email in MOODLE_EXPORT[1:]:
            assert surname not in sent and email not in sent


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    return subprocess.run(
        [str(mkdocs), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )


def test_the_docs_site_builds_with_strict_checks(tmp_path):
    built = mkdocs_build(PROJECT_DIR / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "term" / "index.html").exists()


def test_a_broken_link_or_a_page_left_out_of_the_nav_fails_the_build(tmp_path):
    """What the build above guards: MkDocs's strict mode fails on either."""
    for broken in ("[gone](no-such-page.md)", "[gone](term.md#no-such-heading)", None):
        copy = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(DOCS, copy / "docs")
        shutil.copy(PROJECT_DIR / "mkdocs.yml", copy / "mkdocs.yml")
        if broken:
            page = copy / "docs" / "cost.md"
            page.write_text(page.read_text() + f"\n{broken}\n")
        else:
            (copy / "docs" / "orphan.md").write_text("# Not in the nav\n")
        built = mkdocs_build(copy / "mkdocs.yml", copy / "site")
        assert built.returncode != 0, broken


def heading_anchors(page: Path) -> set[str]:
    """The anchors MkDocs gives a page's headings (Python-Markdown's toc extension)."""
    from markdown.extensions.toc import slugify

    headings = re.findall(r"^#+ (.+)$", without_fenced_blocks(page.read_text()), re.M)
    return {slugify(re.sub(r"[`*]", "", heading), "-") for heading in headings}


def test_every_link_of_the_readme_reaches_a_page_and_its_heading():
    """MkDocs checks docs/'s links; the README is not part of the site, so this checks its."""
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) >= 20
    broken = []
    for link in local:
        target, _, anchor = link.partition("#")
        page = PROJECT_DIR / target
        if not page.exists() or (anchor and anchor not in heading_anchors(page)):
            broken.append(link)
    assert broken == []
