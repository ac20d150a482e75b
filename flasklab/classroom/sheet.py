"""`class sheet --stack S`: the class's access sheet, from the stack's outputs.

Writes, in sheets/<stack>/ (or --out): `hosts`, every student's hosts line for the teacher
to paste once; `students.csv` for a spreadsheet; `index.html`, a printable card per
student (with the student's start link when the stack has them: startLink); and
`keys/<student>.pem` (0600, in a 0700 folder) for each key the stack made. The private
keys are only ever in keys/: never in the page or the CSV. The start links are secret
outputs too: only on the cards, and only from outputs that hold them (read from Pulumi,
or saved with --show-secrets); otherwise the sheet says how to get them.

EC2 is asked first (flasklab.classroom.live): a running server's address is the one it
has now (a stop and start changes it), a stopped one's card says since when and why, and
one built from an older config says how to apply it. Without AWS credentials the sheet
comes from the outputs alone, and says so.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from flasklab import plan
from flasklab.classroom import check, hosts, outputs
from flasklab.classroom.account import AccountError, Server, add_class_arguments, check_region
from flasklab.classroom.live import LiveServers, live_servers
from flasklab.classroom.outputs import (
    SHEETS_DIR,
    OutputsError,
    StudentAccess,
    add_outputs_argument,
    read_outputs,
)
from flasklab.classroom.private_files import key_text, private_folder, student_file_name, write_private
from flasklab.settings import Settings

HOSTS_FILE = hosts.HOSTS_FILE
CSV_FILE = "students.csv"
HTML_FILE = "index.html"
KEYS_DIR = "keys"
TEMPLATE = "sheet.html.j2"
# One environment, autoescaped: names and commands come from the outputs, not from us.
ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
CSV_COLUMNS = (
    "student",
    outputs.PUBLIC_IP,
    outputs.SERVER_NAMES,
    outputs.URL,
    outputs.HOSTS_LINE,
    outputs.SSH_COMMAND,
    "keyFile",
    outputs.FIRST_BOOT_SECONDS,
    "status",
)


@dataclass(frozen=True)
class Card:
    """What the sheet says of one student's server."""

    access: StudentAccess
    ssh_command: str
    key_file: str  # relative to the sheet's folder; '' when the stack made no key
    status: str
    good: bool  # the status says the server is ready, or passed the last check
    stopped: bool = False  # EC2 says it is not running: no address now
    start_link: str = field(default="", repr=False)  # the student's start link (startLink)
    start_link_note: str = ""  # why the card has none although the stack makes them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_class_arguments(parser, stack_required=True)
    add_outputs_argument(parser)
    parser.add_argument("--out", type=Path, help="the folder to write (default: sheets/STACK/)")


def status_of(access: StudentAccess) -> str:
    """Only what the outputs know; they are as of the last `pulumi up`."""
    if not access.public_ip:
        return "no address yet: run pulumi up"
    if access.first_boot_seconds is not None:
        return f"ready at pulumi up: first boot took {access.first_boot_seconds:.0f} s"
    return "not known: pulumi up did not report its first boot; open the URL to see"


def key_file_of(access: StudentAccess) -> str:
    if not access.ssh_private_key:
        return ""
    return f"{KEYS_DIR}/{student_file_name(access.student)}.pem"


def ssh_command_with_key(command: str, key_file: str) -> str:
    """The outputs' ssh command, logging in with the key file the sheet wrote."""
    if not key_file or not command:
        return command
    words = shlex.split(command)
    if "-i" in words[:-1]:
        words[words.index("-i") + 1] = key_file
    else:
        words[1:1] = ["-i", key_file]
    return shlex.join(words)


def checked_status(checked: tuple[bool, str], when: str) -> str:
    """The status after a `class check`, which knows more than the outputs."""
    passed, problems = checked
    return f"class check of {when}: " + ("passes every check" if passed else f"fails: {problems}")


def card_of(
    access: StudentAccess,
    checked: tuple[bool, str] | None = None,
    when: str = "",
    ec2: Server | None = None,
    start_command: str = "",
    gone: bool = False,
) -> Card:
    key_file = key_file_of(access)
    if ec2 is not None and ec2.running:
        access = at_address(access, ec2.public_ip)
    ssh = ssh_command_with_key(access.ssh_command, key_file)
    drift = f"; {ec2.drift}" if ec2 is not None and ec2.drift else ""
    if gone:
        why = f"EC2 has no instance of {access.student} (terminated or swept?): `pulumi up` makes it anew"
        return Card(access, ssh, key_file, why, False, stopped=True)
    if ec2 is not None and not ec2.running:
        status = f"{ec2.not_running_note}; {start_command}" if start_command else ec2.not_running_note
        return Card(access, ssh, key_file, status + drift, False, stopped=True)
    if checked is not None:
        return Card(access, ssh, key_file, checked_status(checked, when) + drift, checked[0])
    return Card(access, ssh, key_file, status_of(access) + drift, access.first_boot_seconds is not None)


def with_start_link(card: Card, stack: str, start_link_on: bool | None) -> Card:
    """The card with the student's start link, or a word on why it has none: the outputs
    hide it (saved without --show-secrets), or the stack has startLink on and the outputs do
    not have the links yet. A stack without start links (startLink off) gets neither."""
    access = card.access
    if access.start_link:
        return dataclasses.replace(card, start_link=access.start_link)
    if access.start_link_hidden:
        note = (
            f"hidden: these outputs were saved without --show-secrets. Leave out --outputs, or save "
            f"`{outputs.show_secrets_command(stack)}` outside the project and pass it"
        )
        return dataclasses.replace(card, start_link_note=note)
    if start_link_on:
        return dataclasses.replace(
            card, start_link_note="not in the outputs yet: run `pulumi up` (startLink is on)"
        )
    return card


def at_address(access: StudentAccess, address: str) -> StudentAccess:
    """The access at the address EC2 gives the server now (the outputs keep the last `pulumi up`'s)."""
    if not address or address == access.public_ip:
        return access
    old = access.public_ip
    return dataclasses.replace(
        access,
        public_ip=address,
        hosts_line=plan.hosts_line_of(address, access.server_names),
        ssh_command=access.ssh_command.replace(old, address) if old else access.ssh_command,
        url=access.url.replace(old, address) if old else access.url,
    )


def hosts_text(stack: str, cards: list[Card], zone: str = "") -> str:
    lines = hosts.header(stack, f"python -m flasklab class sheet --stack {stack}")
    if zone:
        lines.append(f"# Optional: the names are in the DNS zone {zone} and follow each server's address.")
    for card in cards:
        line = card.access.hosts_line
        if card.stopped:
            lines.append(f"# {card.access.student}: {card.status.split(':')[0]}, no address now")
        else:
            lines.append(line if card.access.public_ip else f"# {card.access.student}: no address yet")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, cards: list[Card]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        for card in cards:
            access = card.access
            seconds = access.first_boot_seconds
            writer.writerow(
                [
                    access.student,
                    access.public_ip,
                    " ".join(access.server_names),
                    access.url,
                    access.hosts_line,
                    card.ssh_command,
                    card.key_file,
                    "" if seconds is None else f"{seconds:.0f}",
                    card.status,
                ]
            )


def render_html(stack: str, cards: list[Card], zone: str = "") -> str:
    written = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return ENVIRONMENT.get_template(TEMPLATE).render(
        stack=stack,
        cards=cards,
        written=written,
        hosts_file=HOSTS_FILE,
        zone=zone,
        links_hidden=any(card.access.start_link_hidden for card in cards),
        show_secrets=outputs.show_secrets_command(stack),
    )


def write_keys(folder: Path, cards: list[Card]) -> int:
    """Each key the stack made, 0600 in a 0700 folder; keys of students gone are removed."""
    keys = {card.key_file: card.access.ssh_private_key for card in cards if card.key_file}
    keys_dir = folder / KEYS_DIR
    if not keys and not keys_dir.exists():
        return 0
    private_folder(keys_dir)
    for stale in keys_dir.glob("*.pem"):
        if f"{KEYS_DIR}/{stale.name}" not in keys:
            stale.unlink()
    for key_file, key in keys.items():
        write_private(folder / key_file, key_text(key))
    return len(keys)


def write_sheet(
    stack: str,
    students: list[StudentAccess],
    folder: Path,
    live: LiveServers | None = None,
    start_link_on: bool | None = None,
    zone: str = "",
) -> int:
    """Writes the sheet's files; the number of key files written. `start_link_on`: the
    stack's startLink setting (None: its settings cannot be read here). zone: the stack's
    dnsZone ('' without one), whose names make the hosts file optional."""
    live = live or LiveServers()
    # The last `class check` of this stack, if it wrote its CSV here.
    check_csv = folder / check.CHECK_CSV
    results = check.read_results(check_csv)
    when = ""
    if results:
        when = datetime.datetime.fromtimestamp(check_csv.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    cards = [
        with_start_link(
            card_of(
                access,
                results.get(access.student),
                when,
                live.of(access.student),
                live.start_command(access.student),
                gone=live.asked and live.of(access.student) is None,
            ),
            stack,
            start_link_on,
        )
        for access in students
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / HOSTS_FILE).write_text(hosts_text(stack, cards, zone), encoding="utf-8")
    write_csv(folder / CSV_FILE, cards)
    (folder / HTML_FILE).write_text(render_html(stack, cards, zone), encoding="utf-8")
    return write_keys(folder, cards)


def stack_zone(servers: list[Settings] | None) -> str:
    """The stack file's dnsZone ('' without one, or when its settings cannot be read here)."""
    zone = servers[0].dns_zone if servers else None
    return zone.name if zone else ""


def run(args: argparse.Namespace) -> int:
    folder = args.out or SHEETS_DIR / args.stack
    try:
        check_region(args.region)
    except AccountError as error:
        print(f"flasklab class sheet: --region: {error}", file=sys.stderr)
        return 2
    try:
        students = read_outputs(args.stack, args.outputs)
        settings = outputs.stack_servers(args.stack)
        live = live_servers(args.stack, args.region)
        if live.note:
            print(live.note, file=sys.stderr)
        start_link_on = None if settings is None else any(s.start_link for s in settings)
        keys = write_sheet(args.stack, students, folder, live, start_link_on, zone=stack_zone(settings))
    except OutputsError as error:
        print(error, file=sys.stderr)
        return 2
    except OSError as error:
        print(f"cannot write the sheet in {folder}: {error.strerror} ({error.filename})", file=sys.stderr)
        return 2
    files = ", ".join((HOSTS_FILE, CSV_FILE, HTML_FILE))
    print(f"wrote the access sheet of {len(students)} students in {folder}/: {files}")
    if keys:
        print(f"private keys: {keys}, in {folder / KEYS_DIR}/ (0600): hand each student theirs privately")
    return 0
