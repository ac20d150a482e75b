"""A whole class: `python -m flasklab class COMMAND`.

Each command is a module of this package with `add_arguments(parser)` and
`run(args) -> int` (the exit status). COMMANDS maps a command to its module and its
one-line help; several commands may share a module, which then reads `args.command`.
"""

COMMANDS: dict[str, tuple[str, str]] = {
    "cost": ("cost", "what a term of the stack costs: compute, disks, public IPv4, snapshots (AWS's prices)"),
    "check": ("check", "check every student's server at once: a table, a CSV, exit 1 if any fails"),
    "grade": (
        "grade",
        "score every student's exercise against the rubric: a table, a CSV per run, a Moodle import",
    ),
    "handout": (
        "handout",
        "a folder per student: their page (their language) and their key; --mail to send them",
    ),
    "faults": (
        "faults",
        "stage broken: each student's fault, what they see, the checkpoints it fails and the fix",
    ),
    "rebuild": ("rebuild", "make students' servers anew from the stack's settings (old disks snapshotted)"),
    "snapshots": (
        "disks",
        "the disks kept when servers were deleted; --restore puts one back as a second disk",
    ),
    "roster": (
        "roster_import",
        "make a roster from an LMS's export (roster import FILE): ids, names kept out of git",
    ),
    "sheet": ("sheet", "the class's access sheet: a hosts file, a CSV, a printable page and the keys"),
    "stacks": ("student_stacks", "write one stack file per roster row from a template stack"),
    "status": ("status", "the course's servers in AWS now (state, uptime, address) and a fresh hosts file"),
    "stop": ("power", "stop the course's servers (or --student's) and wait until they are stopped"),
    "start": ("power", "start the course's servers (or --student's) and wait until they run"),
    "sweep": ("sweep", "list (--yes: delete) what flasklab left of stacks or students that no longer exist"),
}
