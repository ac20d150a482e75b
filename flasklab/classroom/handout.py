"""`class handout --stack S`: a folder per student with their page and their key, and the
mail that takes both to them (`--mail`, flasklab.classroom.handout_mail).

Each folder (sheets/<stack>/handouts/<student>/, 0700) holds `handout.html`, a printable
page in the class's language (flasklab/handout_texts/), and `<student>.pem` (0600) when the
stack made the student's key. A folder holds one student's data only: the page is made
from that student's entry in the outputs, their settings and their row of the people file,
never from the class's lists (the sheet is the teacher's page for those).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from flasklab import compose
from flasklab.classroom import handout_mail
from flasklab.classroom import outputs as outputs_module
from flasklab.classroom.handout_mail import Letter
from flasklab.classroom.live import live_servers
from flasklab.classroom.outputs import (
    SHEETS_DIR,
    OutputsError,
    StudentAccess,
    add_outputs_argument,
    read_outputs_document,
)
from flasklab.classroom.private_files import (
    key_text,
    private_folder,
    student_file_name,
    write_private,
)
from flasklab.classroom.sheet import at_address, ssh_command_with_key
from flasklab.handout_texts import texts
from flasklab.people import Person, people_path, read_people
from flasklab.roster import ROSTER_SETTING, load_servers, roster_path
from flasklab.rubric import rubric, title_and_hint
from flasklab.settings import ConfigError, Settings
from flasklab.stacks import stack_config

HANDOUTS_DIR = "handouts"
PAGE_FILE = "handout.html"
TEXT_FILE = "handout.txt"  # the page's text, for whoever prefers it (or a screen reader)
TEMPLATE = "handout.html.j2"
TEXT_TEMPLATE = "handout.txt.j2"
HOSTS_FILE_UNIX = "/etc/hosts"
HOSTS_FILE_WINDOWS = r"C:\Windows\System32\drivers\etc\hosts"
DESCRIPTION = (
    "Write a folder per student (sheets/STACK/handouts/STUDENT/, only for the teacher's account): "
    "a printable page in the class's language with their address, hosts line, key and how to "
    "protect it, the ssh command and the exercise, and their private key when the stack made it. "
    "--mail shows what would be mailed to whom; --mail --send sends it (SMTP with STARTTLS, "
    "settings from FLASKLAB_SMTP_* variables: see docs/handouts.md)."
)
ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    # The page is autoescaped (names and commands come from the outputs and the people
    # file); its text version is plain text.
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class HandoutError(Exception):
    """The handouts cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class Handout:
    """Everything one student's page and mail say: theirs and nobody else's."""

    access: StudentAccess
    person: Person
    settings: Settings
    key_file: str  # the key's file name in the folder; '' when the stack made no key
    start_link: str

    @property
    def student(self) -> str:
        return self.access.student

    @property
    def ssh_command(self) -> str:
        return ssh_command_with_key(self.access.ssh_command, self.key_file)

    @property
    def language(self) -> str:
        return self.settings.language


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    # No --region: a handout is made from the outputs and the stack file; it asks no AWS.
    parser.add_argument("--stack", required=True, help="the stack, as in stacks/Pulumi.NAME.yaml")
    add_outputs_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        help="the folder to write a folder per student in (default: sheets/STACK/handouts/)",
    )
    parser.add_argument(
        "--student", action="append", metavar="NAME", help="only this student (repeat for more)"
    )
    parser.add_argument(
        "--mail",
        action="store_true",
        help="show what would be mailed to each student (their page and key); sends nothing without --send",
    )
    parser.add_argument("--send", action="store_true", help="with --mail: send the mails")


def say(language: str) -> Callable[..., str]:
    """The text `key` in `language`, its braces filled in with the values given."""
    words = texts(language)

    def text(key: str, **values: Any) -> str:
        return words[key].format(**values)

    return text


def settings_by_student(stack: str) -> tuple[dict[str, Settings], dict[str, Any]]:
    """Each server's settings by the student the outputs name it by (a single stack's: the
    stack's name), and the stack's config; read without its secrets, which no page needs."""
    try:
        config = stack_config(stack, without_secrets=True)
        servers = load_servers(config, stack)
    except ConfigError as error:
        raise HandoutError(
            f"the handouts need the settings of stack {stack} (its language, stage and recipe): {error}"
        ) from None
    return {settings.student or stack: settings for settings in servers}, config


def people_of(config: dict[str, Any]) -> tuple[dict[str, Person], Path | None]:
    """The people file beside the stack's roster (names, emails), and its path; nothing for a
    stack without a roster or a roster without one (the pages then name students by id)."""
    roster = config.get(ROSTER_SETTING)
    if not isinstance(roster, str) or not roster:
        return {}, None
    path = people_path(roster_path(roster))
    if not path.is_file():
        return {}, path
    try:
        return read_people(path), path
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise HandoutError(
            f"{path} cannot be read as a people file ({error}). Make it anew from your LMS's export "
            f"with `flasklab class roster import EXPORT --out {roster} --force` (it writes the roster "
            f"and the people file)."
        ) from None


def handouts_of(
    stack: str, accesses: list[StudentAccess], document: dict[str, Any], only: list[str] | None
) -> tuple[list[Handout], Path | None]:
    """A handout per student of the outputs (or of `only`), and the people file read."""
    settings, config = settings_by_student(stack)
    people, people_file = people_of(config)
    links = outputs_module.start_links(document, stack)
    chosen = accesses
    if only:
        known = {access.student for access in accesses}
        unknown = sorted(set(only) - known)
        if unknown:
            raise HandoutError(
                f"--student {', '.join(unknown)}: not in the outputs of stack {stack}. "
                f"Its students: {', '.join(sorted(known))}."
            )
        chosen = [access for access in accesses if access.student in only]
    handouts = []
    for access in chosen:
        if access.student not in settings:
            # Gone from the roster since the last `pulumi up`: their server goes at the next.
            print(
                f"{access.student}: in the outputs but no longer on stack {stack}'s roster: no handout "
                f"(`pulumi up` removes their server).",
                file=sys.stderr,
            )
            continue
        student = student_file_name(access.student)
        handouts.append(
            Handout(
                access=access,
                person=people.get(student) or Person(student=student, name=""),
                settings=settings[student],
                key_file=f"{student}.pem" if access.ssh_private_key else "",
                start_link=links.get(student, ""),
            )
        )
    return handouts, people_file


def name_of(handout: Handout) -> str:
    return handout.person.name or handout.student


def exercise_steps(handout: Handout) -> list[str]:
    """The rubric's checkpoints in the class's language: the exercise's goal, at the stages
    that leave the student work (a finished server has nothing left, and no flasklab-check)."""
    settings = handout.settings
    if not compose.ships_check(settings):
        return []
    return [title_and_hint(settings, checkpoint, settings.language)[0] for checkpoint in rubric(settings)]


def letter_of(handout: Handout, folder: Path) -> Letter:
    text = say(handout.language)
    course = handout.settings.course
    note = text("mail_key_note", key_file=handout.key_file) if handout.key_file else text("mail_no_key")
    attachments = (folder / PAGE_FILE, *((folder / handout.key_file,) if handout.key_file else ()))
    return Letter(
        student=handout.student,
        to=handout.person.email,
        subject=text("mail_subject", course=course),
        body=text("mail_body", name=name_of(handout), course=course, page=PAGE_FILE, key_note=note),
        attachments=attachments,
    )


def render_page(handout: Handout, stack: str, written: str, template: str = TEMPLATE) -> str:
    """The page (TEMPLATE), or its text version (TEXT_TEMPLATE)."""
    settings = handout.settings
    return ENVIRONMENT.get_template(template).render(
        handout=handout,
        stack=stack,
        name=name_of(handout),
        say=say(handout.language),
        course=settings.course,
        stage=settings.stage.name,
        steps=exercise_steps(handout),
        manager=settings.recipe.manager,
        web_server=settings.recipe.web_server.name,
        checks=compose.ships_check(settings),
        # With dnsZone the names resolve anywhere: no hosts line to paste.
        zone=settings.dns_zone.name if settings.dns_zone else "",
        hosts_unix=HOSTS_FILE_UNIX,
        hosts_windows=HOSTS_FILE_WINDOWS,
        written=written,
    )


def write_handout(handout: Handout, stack: str, folder: Path, written: str) -> Path:
    """The student's folder: the page, and the key when there is one (a key no longer
    made is removed). Only the teacher's account may read any of it."""
    private_folder(folder)
    for stale in folder.glob("*.pem"):
        if stale.name != handout.key_file:
            stale.unlink()
    write_private(folder / PAGE_FILE, render_page(handout, stack, written))
    write_private(folder / TEXT_FILE, render_page(handout, stack, written, TEXT_TEMPLATE))
    if handout.key_file:
        write_private(folder / handout.key_file, key_text(handout.access.ssh_private_key))
    return folder


def at_addresses_now(stack: str, accesses: list[StudentAccess]) -> list[StudentAccess]:
    """Each running server at the address EC2 gives it now, as the sheet does (a stop and
    start changes it; the outputs keep the last `pulumi up`'s). Without AWS, the outputs'."""
    live = live_servers(stack)
    if live.note:
        print(live.note, file=sys.stderr)
    now = []
    for access in accesses:
        server = live.of(access.student)
        if server is not None and not server.running:
            print(
                f"{access.student}: {server.not_running_note}. Its page gives the address of the last "
                f"`pulumi up`, which changes when the server starts (unless staticAddress): write the "
                f"handout again once it runs.",
                file=sys.stderr,
            )
        now.append(at_address(access, server.public_ip) if server is not None and server.running else access)
    return now


def run(args: argparse.Namespace) -> int:
    if args.send and not args.mail:
        print("flasklab class handout: --send sends the mails of --mail: give both.", file=sys.stderr)
        return 2
    out: Path = args.out or SHEETS_DIR / args.stack / HANDOUTS_DIR
    written = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        accesses, document = read_outputs_document(args.stack, args.outputs)
        accesses = at_addresses_now(args.stack, accesses)
        handouts, people_file = handouts_of(args.stack, accesses, document, args.student)
        private_folder(out)
        folders = {
            handout.student: write_handout(handout, args.stack, out / handout.student, written)
            for handout in handouts
        }
    except (OutputsError, HandoutError) as error:
        print(error, file=sys.stderr)
        return 2
    except OSError as error:
        print(f"cannot write the handouts in {out}: {error.strerror} ({error.filename})", file=sys.stderr)
        return 2
    keys = sum(1 for handout in handouts if handout.key_file)
    print(f"wrote {len(handouts)} handouts in {out}/ (a folder per student, {keys} with their private key).")
    if _links_hidden(document):
        print("the start links are hidden ([secret]): save the outputs with --show-secrets to add them.")
    if not args.mail:
        print(
            "hand each student their own folder privately, or mail them: --mail shows what would go to whom."
        )
        return 0
    letters = [letter_of(handout, folders[handout.student]) for handout in handouts]
    return handout_mail.mail_handouts(letters, people_file, send=args.send)


def _links_hidden(document: dict[str, Any]) -> bool:
    hidden = outputs_module.HIDDEN_SECRET
    links = document.get(outputs_module.START_LINKS)
    if isinstance(links, dict):
        return hidden in links.values()
    return bool(links == hidden or document.get(outputs_module.START_LINK) == hidden)
