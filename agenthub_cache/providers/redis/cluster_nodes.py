"""Reading a Redis Cluster's slot map from its startup nodes, and what can go wrong there.

* **Startup nodes that do not answer.** redis-py asks them one after another, each for up to
  the socket timeout: with N that hang, every call that needs the slot map took N timeouts.
  ``answering``/``aanswering`` PING them all at once and return as soon as one answers, with
  the nodes that answered by then; the client is built from those. So a call takes about one
  timeout whatever N is (``ConnectionError`` naming each node when none answers: an outage).
* **A node without cluster support** is a misconfiguration, not an outage: ``reading_slots``
  turns redis-py's "cannot be connected ... Cluster mode is not enabled" into
  ``NotAClusterError``, whose message names the fix (the cluster provider lists it among its
  refusals: ``CacheRefused``, never silenced by ``FAIL_SILENTLY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as ARetry
from redis.backoff import NoBackoff
from redis.cluster import cleanup_kwargs
from redis.exceptions import AuthenticationError, RedisClusterException, ResponseError
from redis.retry import Retry

from agenthub_cache.providers.redis.cluster_settings import ClusterSpec

Node = tuple[str, int]


def node_name(host: str, port: int) -> str:
    """redis-py's name of a node (``ClusterNode.name``: localhost resolved)."""
    return f"{socket.gethostbyname(host) if host == 'localhost' else host}:{port}"


def _probe_kwargs(spec: ClusterSpec) -> dict[str, Any]:
    """What redis-py gives each node's client (``cleanup_kwargs``), with no retries."""
    kwargs: dict[str, Any] = cleanup_kwargs(**spec.client_kwargs())  # type: ignore[no-untyped-call]
    return kwargs


def _answered(error: BaseException | None) -> bool:
    """A reply, even a refusal (NOAUTH, WRONGPASS), means the node answers: reading the slot
    map from it then says what is wrong, as redis-py tells it."""
    return error is None or isinstance(error, AuthenticationError | ResponseError)


def _ping(client: redis.Redis) -> BaseException | None:
    try:
        client.ping()
    except Exception as exc:
        return exc
    finally:
        client.close()
    return None


def _none_answered(spec: ClusterSpec, problems: list[str]) -> redis.exceptions.ConnectionError:
    return redis.exceptions.ConnectionError(
        f"no startup node of the Redis Cluster {spec.location} answered within "
        f"{spec.socket_timeout:g} s: " + "; ".join(problems)
    )


def answering(spec: ClusterSpec) -> list[Node]:
    """The startup nodes that answer, in the order they did: all asked at once (a thread
    each), returned at the first answer. One startup node is not asked (nothing to gain)."""
    nodes = list(spec.nodes)
    if len(nodes) == 1:
        return nodes
    kwargs = {**_probe_kwargs(spec), "retry": Retry(NoBackoff(), 0)}
    clients = {node: redis.Redis(**{**kwargs, "host": node[0], "port": node[1]}) for node in nodes}
    pool = ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="agenthub-cluster-ping")
    asked = {pool.submit(_ping, client): node for node, client in clients.items()}
    answered: list[Node] = []
    problems: list[str] = []
    pending: set[Future[BaseException | None]] = set(asked)
    try:
        while pending and not answered:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                (host, port), error = asked[future], future.result()
                if _answered(error):
                    answered.append((host, port))
                else:
                    problems.append(f"{host}:{port}: {error}")
    finally:
        for future in pending:  # the nodes that have not answered yet: no more waiting, and
            clients[asked[future]].connection_pool.disconnect()  # their sockets closed now
        pool.shutdown(wait=False)
    if not answered:
        raise _none_answered(spec, problems)
    return answered


async def _aping(host: str, port: int, kwargs: dict[str, Any]) -> BaseException | None:
    client = aredis.Redis(**{**kwargs, "host": host, "port": port, "retry": ARetry(NoBackoff(), 0)})
    try:
        await client.ping()
    except Exception as exc:
        return exc
    finally:
        await client.aclose()
    return None


async def aanswering(spec: ClusterSpec) -> list[Node]:
    """``answering`` on the event loop: a task per node."""
    nodes = list(spec.nodes)
    if len(nodes) == 1:
        return nodes
    kwargs = _probe_kwargs(spec)
    asked = {
        asyncio.ensure_future(_aping(host, port, kwargs)): (host, port) for host, port in nodes
    }
    answered: list[Node] = []
    problems: list[str] = []
    pending = set(asked)
    try:
        while pending and not answered:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                (host, port), error = asked[task], task.result()
                if _answered(error):
                    answered.append((host, port))
                else:
                    problems.append(f"{host}:{port}: {error}")
    finally:
        for task in pending:  # the nodes that have not answered yet: no more waiting
            task.cancel()
        if pending:  # each closes its connection: none outlives the search
            await asyncio.wait(pending)
    if not answered:
        raise _none_answered(spec, problems)
    return answered


class NotAClusterError(RedisClusterException):
    """A startup node answered, but it is a Redis server without cluster support. Nothing
    will change that but the settings or the server's configuration: a refusal
    (``CacheRefused``, never silenced by ``FAIL_SILENTLY``), not an outage."""


def not_a_cluster(exc: RedisClusterException, spec: ClusterSpec) -> NotAClusterError | None:
    """``exc`` (from reading the slot map) as a ``NotAClusterError`` naming the fix, if a node
    said it has no cluster support; else None. redis-py raises "Cluster mode is not enabled"
    (5.x: after INFO; 8.x: from the ``ResponseError`` of CLUSTER SLOTS) wrapped in "cannot be
    connected", so the whole chain is looked at."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "Cluster mode is not enabled" in text or (
            isinstance(seen, ResponseError) and "cluster support disabled" in text
        ):
            return NotAClusterError(
                f"the startup nodes {spec.location} of this RedisClusterCache are Redis "
                "servers without cluster support (cluster mode is not enabled). Point "
                "LOCATION at nodes of a Redis Cluster, or start the servers with "
                "cluster-enabled yes and form a cluster; for a single Redis server use "
                "django_redis.cache.RedisCache instead."
            )
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def reading_slots(spec: ClusterSpec) -> Iterator[None]:
    """Around whatever reads the slot map: a node without cluster support is named as such."""
    try:
        yield
    except NotAClusterError:
        raise
    except RedisClusterException as exc:
        found = not_a_cluster(exc, spec)
        if found is None:
            raise
        raise found from exc
