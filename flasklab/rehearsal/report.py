"""What a rehearsal tells the teacher, from plain data: timings, cloud-init's own
per-module timings and, on failure, everything needed to fix the stack without a shell
on the server. Nothing here reads files or runs programs."""

from __future__ import annotations

from dataclasses import dataclass, field

from flasklab import server_status
from flasklab.server_status import Evidence


@dataclass
class Outcome:
    """How one boot went."""

    cloud_init_seconds: float | None = None
    first_response_seconds: float | None = None
    cloud_init_errors: list[str] = field(default_factory=list)
    http_problems: list[str] = field(default_factory=list)
    first_response: str = ""
    first_headers: dict[str, str] = field(default_factory=dict)
    failure: str = ""

    @property
    def ok(self) -> bool:
        return not (self.failure or self.cloud_init_errors or self.http_problems)

    @property
    def deploy_failed(self) -> bool:
        """cloud-init's user scripts (flasklab-deploy) failed."""
        return server_status.deploy_failed(self.cloud_init_errors)

    @property
    def problems(self) -> list[str]:
        return [*([self.failure] if self.failure else []), *self.cloud_init_errors, *self.http_problems]


@dataclass(frozen=True)
class Heading:
    """Which rehearsal, and how to reach its site."""

    stack: str
    codename: str
    url: str
    address: str  # the container's, on its own network
    hosts_line: str
    try_it: str  # a command that reaches the site from this machine
    blame: str  # cloud-init's slowest modules, indented lines
    kept: bool = False  # the container outlives the report (--keep)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _try_it(heading: Heading) -> str:
    """The command reaches the site only while its container runs."""
    if heading.kept:
        return heading.try_it
    return f"(the container is removed after this report; rehearse with --keep, then) {heading.try_it}"


def render(
    heading: Heading, outcome: Outcome, evidence: Evidence | None = None, notes: list[str] | None = None
) -> str:
    """The report; `notes` (the deploy script's, as flasklab-status shows them) on success,
    `evidence` (notes included) on failure."""
    verdict = "PASSED" if outcome.ok else "FAILED"
    lines = [
        f"\n=== flasklab rehearsal of stack '{heading.stack}' (Debian {heading.codename}): {verdict} ===",
        f"cloud-init done after:  {_seconds(outcome.cloud_init_seconds)}",
        f"first good response:    {_seconds(outcome.first_response_seconds)}",
        f"URL:                    {heading.url}",
        f"container's address:    {heading.address}",
        f"hosts line (here):      {heading.hosts_line}",
        f"try it:                 {_try_it(heading)}",
        "slowest cloud-init modules:",
        heading.blame,
    ]
    if outcome.ok:
        first = outcome.first_response.strip().splitlines()
        lines.append(server_status.section(f"first response of {heading.url}", "\n".join(first[:20])))
        lines.append(server_status.notes_section(notes or []))
        return "\n".join(line for line in lines if line)
    lines.append(
        server_status.section("what went wrong", "\n".join(f"- {problem}" for problem in outcome.problems))
    )
    if evidence is not None:
        # The same sections flasklab-status prints on a server.
        lines += server_status.evidence_sections(evidence)
    return "\n".join(lines)


def keep_instructions(machine: str, leader_pid: int | None) -> str:
    return (
        f"\nThe container {machine} is still running (--keep).\n"
        f"  shell in it:  nsenter --target {leader_pid} --all /bin/bash -l\n"
        f"  stop it:      python -m flasklab clean   (stops every kept rehearsal)\n"
    )
