"""EC2's instance metadata service (IMDSv2), as much of it as a rehearsed server reads:
a session token (PUT /latest/api/token), then, with that token, its public IPv4 address
(GET /latest/meta-data/public-ipv4), which in a rehearsal is the container's address.

It answers at EC2's address (METADATA_ADDRESS) in a network namespace of its own, linked to
the rehearsal's, started by flasklab.rehearsal.acme as
`python -m flasklab.rehearsal.metadata ADDRESS PUBLIC_IPV4`:
the server's scripts read it exactly as they read EC2's, nothing in the user-data differs.
"""

from __future__ import annotations

import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METADATA_ADDRESS = "169.254.169.254"
TOKEN_PATH = "/latest/api/token"
PUBLIC_IPV4_PATH = "/latest/meta-data/public-ipv4"
BIND_SECONDS = 10


def handler_for(public_ipv4: str, token: str) -> type[BaseHTTPRequestHandler]:
    class Metadata(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            # IMDSv2: a token is given only to a PUT that says how long it should live.
            if self.path == TOKEN_PATH and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                self._answer(200, token)
            else:
                self._answer(400, "bad token request")

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") != token:
                self._answer(401, "")  # as EC2 answers a request without a valid token
            elif self.path == PUBLIC_IPV4_PATH:
                self._answer(200, public_ipv4)
            else:
                self._answer(404, "")

        def _answer(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"metadata: {format % args}\n")

    return Metadata


def main(argv: list[str]) -> None:
    listen, public_ipv4 = argv
    handler = handler_for(public_ipv4, secrets.token_urlsafe(32))
    deadline = time.monotonic() + BIND_SECONDS
    while True:  # the address comes once the rehearsal has linked this namespace to its own
        try:
            server = ThreadingHTTPServer((listen, 80), handler)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
