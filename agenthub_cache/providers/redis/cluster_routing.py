"""Sending a command whose keys all live in one known hash slot to that slot's primary.

redis-py's ``RedisCluster.execute_command`` works out, for every command, which policies apply,
which keys it has, their slot and the node, before its per-node send (``_execute_command``,
which follows MOVED/ASK/TRYAGAIN and notes a failed node for a slot map refresh). A namespace's
single-key calls need none of that: every key of one call carries the entry's hash tag, so the
provider knows the slot before it builds the call. ``ClusterConnection.on_slot`` (sync) and
``BoundedAsyncCluster.execute_on_slot`` go from the slot to its primary and call the per-node
send directly: ~20 µs less client CPU per call, sync and async, on the benchmark machine (where
a raw ``RedisCluster.get`` costs ~75 µs).

What stays redis-py's own:

* MOVED, ASK and TRYAGAIN are followed inside the per-node send, as before.
* A failure redis-py retries (``ERRORS_ALLOW_RETRY``: a lost or timed-out connection, a slot
  not covered, CLUSTERDOWN) hands the call to the generic ``execute_command``, which runs the
  refresh the failure asked for and retries as it always does: one attempt more than redis-py
  alone makes (none when its retries are off).
* Any other error (an error reply, bad credentials) is raised as the generic path raises it
  on a first attempt.
* Clients that read from replicas, and moments when a slot map refresh is pending, take the
  generic path.
"""

from __future__ import annotations

from typing import Any

from redis.crc import key_slot


def slot_of(key: bytes | str) -> int:
    """The hash slot of ``key`` (as redis-py computes it: its first ``{tag}``, if any)."""
    return key_slot(key if isinstance(key, bytes) else key.encode())


def routes_directly(client: Any) -> bool:
    """Whether ``client``'s keyed commands go to the slot's primary as they are: no reads from
    replicas, and redis-py's per-node send is there."""
    return (
        not getattr(client, "read_from_replicas", False)
        and getattr(client, "load_balancing_strategy", None) is None
        and hasattr(client, "_execute_command")
    )


def retried(client: Any, exc: BaseException) -> bool:
    """Whether ``client.execute_command`` would retry after ``exc`` on a first attempt: its
    type is one redis-py retries (exactly, as redis-py checks it) and retries are on."""
    if type(exc) not in client.ERRORS_ALLOW_RETRY:
        return False
    attempts = getattr(client, "cluster_error_retry_attempts", None)  # redis-py 5.x
    if attempts is None:
        attempts = client.retry.get_retries()
    return bool(attempts > 0)
