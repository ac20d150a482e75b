"""An HTTP CONNECT proxy that closes the first N connections without an answer, then
tunnels every later one: a package mirror that fails the first attempts. The boot test
that needs it copies it into the container with a unit that starts it before cloud-init's
final stage and a pip.conf that sends pip through it (rehearsal-only: never in the
user-data). Standard library only: it runs on the container's own python3. It logs
each connection, refused or tunnelled, to the file named by its third argument."""

from __future__ import annotations

import asyncio
import sys


class FlakyProxy:
    def __init__(self, refuse: int, log_path: str) -> None:
        self.refuse_left = refuse
        self.log_path = log_path

    def log(self, line: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(line + "\n")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse_left > 0:
            self.refuse_left -= 1
            self.log("refused")
            writer.close()
            return
        request = await reader.readuntil(b"\r\n\r\n")
        method, target = request.split(b" ", 2)[:2]
        if method != b"CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            writer.close()
            return
        host, port = target.decode().rsplit(":", 1)
        self.log(f"tunnelled {host}:{port}")
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def main(port: int, refuse: int, log_path: str) -> None:
    proxy = FlakyProxy(refuse, log_path)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
