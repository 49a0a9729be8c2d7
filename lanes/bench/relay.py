"""``python -m lanes.bench.relay LISTEN PORT TARGET``: accept on LISTEN:PORT and relay each
connection to TARGET:PORT, both ways, until either side closes. Simulated hosts
(:mod:`lanes.bench.hosts`) reach the simulator through two: one on this machine's provider
address to the simulator's loopback port, one inside each host on its own loopback, where the
config says the simulator is."""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError):
        writer.close()


async def _serve(listen: str, port: int, host: str) -> None:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    server = await asyncio.start_server(relay, listen, port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    listen, port, target = (argv or sys.argv[1:])[:3]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(listen, int(port), target))


if __name__ == "__main__":
    main()
