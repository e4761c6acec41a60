"""A small asyncio TCP proxy for fault tests: delays, cuts a reply in the middle, black-holes.

It listens on a free loopback port and forwards every connection to one upstream port (a
server the tests started). Its event loop runs in a thread of its own, so the code under test
(sync or async) talks to it like to any server. Faults can be switched at any time, from any
thread, and act on open connections as well as new ones:

* ``delay(seconds)``: hold every reply chunk that long before passing it on;
* ``cut(count)``: the next ``count`` reply chunks are passed on by half, then the connection
  is closed (the client sees a reply end in the middle);
* ``blackhole()``: accept and read, but pass nothing on in either direction;
* ``reset()``: close every open connection at once;
* ``heal()``: back to plain forwarding.

Modelled on the proxy in redis-py's own test helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

from tests.servers import free_port


@dataclass
class ProxyStats:
    connections: int = 0
    cut_replies: int = 0
    dropped_chunks: int = 0
    delayed_chunks: int = 0


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None and not writer.is_closing():
                writer.close()


class Proxy:
    """``Proxy(upstream_port).start()``; point clients at ``proxy.port``; ``stop()`` at the end."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = free_port()
        self.stats = ProxyStats()
        self._delay = 0.0
        self._cuts = 0
        self._blackhole = False
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Proxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coroutine: object, timeout: float = 5.0) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        future.result(timeout)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._close_links()  # first: since Python 3.12.1, wait_closed() waits for them
        if self._server is not None:
            await self._server.wait_closed()

    async def _close_links(self) -> None:
        links, self._links = list(self._links), set()
        for link in links:
            link.close()
        tasks = [task for link in links for task in link.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- faults (callable from any thread) ---------------------------------------------------

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def cut(self, count: int = 1) -> None:
        self._cuts = count

    def blackhole(self) -> None:
        self._blackhole = True

    def reset(self) -> None:
        self._call(self._close_links())

    def heal(self) -> None:
        self._delay, self._cuts, self._blackhole = 0.0, 0, False

    # -- forwarding --------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        link = _Link(writer)
        self._links.add(link)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            link.close()
            self._links.discard(link)
            return
        link.upstream = up_writer
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link, replies=False)),
            asyncio.create_task(self._pump(up_reader, writer, link, replies=True)),
        ]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        link.close()
        self._links.discard(link)
        for w in (writer, up_writer):
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await w.wait_closed()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        replies: bool,
    ) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self._blackhole:
                    self.stats.dropped_chunks += 1
                    continue
                if replies and self._delay:
                    self.stats.delayed_chunks += 1
                    await asyncio.sleep(self._delay)
                if replies and self._cuts > 0:
                    self._cuts -= 1
                    self.stats.cut_replies += 1
                    writer.write(data[: len(data) // 2])
                    with contextlib.suppress(OSError):
                        await writer.drain()
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            link.close()
