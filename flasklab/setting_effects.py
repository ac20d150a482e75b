"""What a change of each setting does to a class's running servers, in one table: the docs'
"What a changed setting does" (docs/term.md) is generated from it (tests/test_setting_effects.py
holds both: the page to this table, and each row to what the program declares).

cloud-init builds a server once, on first boot, so a setting that reaches the user-data
cannot reach a running server without making it anew, which would lose the student's
work. Such changes are recorded as drift (flasklab.build) and applied by `class rebuild`,
when the teacher asks; the rest is applied in place, or concerns only new servers.
"""

from __future__ import annotations

from enum import Enum


class Effect(Enum):
    REBUILD = (
        "Reaches new servers only. Running ones keep what they were built with; `class status`, "
        '`class check` and the sheet say "built from an older config", and `class rebuild` applies it.'
    )
    IN_PLACE = "Applied to every running server by the next `pulumi up`, in place."
    IN_PLACE_RESTART = (
        "Applied in place by the next `pulumi up`, which stops each server, changes it and starts it "
        "again (a stopped server is started too): change it between classes."
    )
    NEW_SERVERS = "What `pulumi up` does when it makes a server; running servers are untouched."
    SCHEDULE = "Changes the stack's schedule in the account; the servers are untouched."
    START_LINK = (
        "Adds or removes the stack's start link (a Lambda function and each student's token); the servers "
        "are untouched."
    )
    ADDRESS = (
        "Gives every server an Elastic IP (or releases them) by the next `pulumi up`, running or stopped; "
        "no server is replaced, and each one's address changes once: hand out the new hosts file."
    )
    DNS_ZONE = (
        "Adds an A record per server name in the zone and the stack's address updater (or removes them) by "
        "the next `pulumi up`; no server is replaced. A class's servers are renamed `<student>.<zone>`: "
        'running ones learn their new names from `class rebuild` (the sheet says "built from an older '
        'config"); a one-student stack whose names are already in the zone is untouched.'
    )
    ROSTER = (
        "Adds the new students' servers and deletes those of students no longer on it (each disk is "
        "snapshotted first); the other students' servers are untouched."
    )


EFFECTS: dict[str, Effect] = {
    "roster": Effect.ROSTER,
    "recipe": Effect.REBUILD,
    "debianRelease": Effect.REBUILD,
    "amiId": Effect.REBUILD,
    "instanceType": Effect.IN_PLACE_RESTART,
    "rootVolumeGiB": Effect.IN_PLACE,
    "autoStopIdleMinutes": Effect.REBUILD,
    "serverName": Effect.REBUILD,
    "serverAliases": Effect.REBUILD,
    "openPorts": Effect.IN_PLACE,
    "sshCidrs": Effect.IN_PLACE,
    "webCidrs": Effect.IN_PLACE,
    "staticAddress": Effect.ADDRESS,
    "keyName": Effect.REBUILD,
    "sshPublicKey": Effect.REBUILD,
    "sshPrivateKey": Effect.NEW_SERVERS,
    "waitForReady": Effect.NEW_SERVERS,
    "readyTimeoutMinutes": Effect.NEW_SERVERS,
    "course": Effect.IN_PLACE,
    "appName": Effect.REBUILD,
    "appRepo": Effect.REBUILD,
    "appRef": Effect.REBUILD,
    "appEntry": Effect.REBUILD,
    "appRequirements": Effect.REBUILD,
    "appStatic": Effect.REBUILD,
    "appStaticUrl": Effect.REBUILD,
    "pythonEnv": Effect.REBUILD,
    "workers": Effect.REBUILD,
    "threads": Effect.REBUILD,
    "appMigrate": Effect.REBUILD,
    "readyPath": Effect.REBUILD,
    "readyText": Effect.REBUILD,
    "database": Effect.REBUILD,
    "databasePassword": Effect.REBUILD,
    "secretKey": Effect.REBUILD,
    "tls": Effect.REBUILD,
    "tlsEmail": Effect.REBUILD,
    "appEnv": Effect.REBUILD,
    "stage": Effect.REBUILD,
    "language": Effect.REBUILD,
    "fault": Effect.REBUILD,
    "stopSchedule": Effect.SCHEDULE,
    "startSchedule": Effect.SCHEDULE,
    "stopScheduleTimezone": Effect.SCHEDULE,
    "stopScheduleRoleArn": Effect.SCHEDULE,
    "startLink": Effect.START_LINK,
    "dnsZone": Effect.DNS_ZONE,
}
# The page that holds the generated table, relative to the project, and the markers around it.
EFFECTS_PAGE = "docs/term.md"
BLOCK_START = "<!-- setting effects: generated from flasklab/setting_effects.py -->"
BLOCK_END = "<!-- end of setting effects -->"


def markdown_table() -> str:
    """The page's table: each effect once, with the settings it applies to."""
    rows = ["| settings | what changing one does to running servers |", "| --- | --- |"]
    for effect in Effect:
        names = ", ".join(f"`{name}`" for name, found in EFFECTS.items() if found is effect)
        rows.append(f"| {names} | {effect.value} |")
    return "\n".join(rows)


def generated_block() -> str:
    return f"{BLOCK_START}\n{markdown_table()}\n{BLOCK_END}"
