"""`class check` without booting anything: its deadline against servers that do not
answer, the manager probe, and its command line's errors."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from flasklab import probes, readiness
from flasklab.__main__ import main
from flasklab.classroom import check
from flasklab.classroom.check import FAILED, OK, Server, SshOptions, check_servers
from flasklab.stacks import load_stack

TIMEOUT = 2.0


def closed_port() -> int:
    """A local port nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[int]:
    """A local port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1000)
        yield int(listener.getsockname()[1])


@contextmanager
def trickling_server() -> Iterator[int]:
    """A local web server that answers one header byte at a time, forever: each read gets
    something before its own timeout, so only a deadline on the whole check ends it."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)
    listener.settimeout(0.2)

    def trickle(connection: socket.socket) -> None:
        connection.settimeout(None)
        with connection:
            try:
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.3):
                    connection.sendall(b"a")
            except OSError:
                pass

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed at the end of the test
            threading.Thread(target=trickle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()


def server(student: str, address: str, port: int, **fields) -> Server:
    settings = load_stack("dev")
    return Server(student, settings, address, settings.server_names, http_port=port, **fields)


def test_200_servers_that_do_not_answer_take_about_two_timeouts():
    refused = closed_port()
    with ExitStack() as stack:
        silent = [stack.enter_context(silent_server()) for _ in range(4)]
        trickling = stack.enter_context(trickling_server())
        servers = [server(f"refused{i:03}", "127.0.0.1", refused) for i in range(50)]
        servers += [server(f"silent{i:03}", "127.0.0.1", silent[i % 4]) for i in range(120)]
        # TEST-NET-1: black-holed, refused or unroutable, whatever this machine does with it.
        servers += [server(f"testnet{i:03}", f"192.0.2.{i + 1}", 80) for i in range(20)]
        servers += [server(f"trickle{i:03}", "127.0.0.1", trickling) for i in range(10)]
        started = time.monotonic()
        rows = check_servers(servers, check.DEFAULT_JOBS, TIMEOUT, SshOptions())
        took = time.monotonic() - started
    assert len(rows) == 200 and all(row.failed for row in rows)
    assert took < 2 * TIMEOUT + 1.5, f"200 servers took {took:.1f} s with a {TIMEOUT} s timeout"
    by_student = {row.student: row for row in rows}
    assert by_student["refused000"].results["reachable"].cell == "no"
    assert "refused port" in by_student["refused000"].results["reachable"].problems[0]
    silent_row = by_student["silent000"]
    assert silent_row.results["reachable"].state == OK  # it accepts...
    assert silent_row.results["app"].state == FAILED  # ...and never answers
    assert by_student["trickle000"].results["app"].cell == "timed out", by_student["trickle000"]
    assert by_student["silent000"].results["cloud_init"].cell == "no SSH key"


def test_a_server_whose_ssh_never_answers_costs_one_timeout(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("not used: the server never gets that far\n")
    key.chmod(0o600)
    with silent_server() as port:
        started = time.monotonic()
        [row] = check_servers(
            [server("ana", "127.0.0.1", port, key_file=key, ssh_port=port)], 4, TIMEOUT, SshOptions()
        )
        took = time.monotonic() - started
    assert took < TIMEOUT + 1, took
    assert row.results["cloud_init"].cell == "timed out"
    assert row.results["program"].state == FAILED


PS_OUTPUT = """\
    1     0 root          systemd         /sbin/init
  410     1 root          nginx           nginx: master process /usr/sbin/nginx
  500     1 flask_app     gunicorn        /var/www/flask_app/.venv/bin/gunicorn wsgi:app
  501   500 flask_app     gunicorn        /var/www/flask_app/.venv/bin/gunicorn wsgi:app
  600   590 admin         bash            -bash
"""


def test_the_manager_probe_reads_ps_as_the_server_prints_it():
    report = readiness.parse_check_output(f"flasklab: ready\n\n{readiness.STATUS_EXIT_MARKER}0\n{PS_OUTPUT}")
    assert report.status_exit == 0 and report.status_text == "flasklab: ready"
    assert probes.runs_under_manager(report.processes, "flask_app", "gunicorn", "systemd") == []
    problems = probes.runs_under_manager(report.processes, "flask_app", "gunicorn", "supervisord")
    assert problems == [
        "gunicorn (pid 500) was started by systemd, not by supervisord: someone started it by hand"
    ]
    assert probes.runs_under_manager(report.processes, "flask_app", "uwsgi", "systemd")[0].startswith(
        "flask_app runs"
    )
    nothing = probes.runs_under_manager(report.processes[:2], "flask_app", "gunicorn", "systemd")
    assert nothing[0].startswith("nothing runs as flask_app")


def test_an_output_cut_short_is_no_verdict():
    report = readiness.parse_check_output("flasklab: first boot is still")
    assert report.status_exit is None
    assert check.first_boot_result(report).cell == "no report"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--jobs", "0"], "--jobs 0: give at least 1"),
        (["--timeout", "0"], "--timeout 0: give a number of seconds above 0"),
        (["--ssh-key", "/nonexistent/key.pem"], "--ssh-key /nonexistent/key.pem: there is no such file"),
        (["--outputs", "/nonexistent/outputs.json"], "cannot be read as the stack's outputs"),
    ],
)
def test_usage_errors_exit_2_with_a_message(arguments, message, capsys):
    assert main(["class", "check", "--stack", "class-demo", *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_student_without_a_server_fails_and_the_csv_says_so(tmp_path, capsys):
    refused = closed_port()
    outputs = tmp_path / "outputs.json"
    entry = {"publicIp": "127.0.0.1", "serverNames": ["ana.practica_flask"], "hostsLine": ""}
    outputs.write_text(json.dumps({"students": {"ana": entry, "zed": entry}}))
    sheet = tmp_path / "check.csv"
    # ana's server is at a port nothing listens on.
    original = check.Server
    check_args = ["class", "check", "--stack", "class-demo", "--outputs", str(outputs), "--csv", str(sheet)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(check, "Server", lambda **fields: original(**fields, http_port=refused))
        status = main([*check_args, "--timeout", "2"])
    printed = capsys.readouterr().out
    assert status == 1
    lines = sheet.read_text().splitlines()
    assert lines[0].startswith("student,address,reachable,app by each name")
    assert [line.split(",")[0] for line in lines[1:]] == ["ana", "ben", "carla"]
    assert ",not deployed," in lines[2] and "run `pulumi up`" in lines[2]
    assert "In the outputs but not on the roster (removed? run `pulumi up`): zed" in printed
    assert f"CSV: {sheet}" in printed
