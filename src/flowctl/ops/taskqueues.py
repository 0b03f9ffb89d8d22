"""Who polls a task queue, and what waits in it: DescribeTaskQueue for workflow and activity tasks.

The server lists each poller (by identity) with the time its last poll arrived, and keeps a
poller listed for minutes after it stopped. A live worker, even an idle one, polls again at
least once per long poll (a minute), so a poller counts as *polling* while its last poll is
younger than `POLL_WINDOW`: a worker that stopped less than that ago still counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowctl.ops.rpc import Outage, Patience, is_outage, rpc_errors

if TYPE_CHECKING:
    from temporalio.client import Client

TYPES = ("workflow", "activity")  # the task queue types a flowctl worker polls, both of them
# A long poll lasts up to a minute (the server's default), and the next one follows at once:
# a poll older than this came from a worker that no longer polls (or whose clock is far off).
POLL_WINDOW = timedelta(seconds=75)
# There is no long-poll for "somebody polls now": waiting asks DescribeTaskQueue this often.
CHECK_INTERVAL = timedelta(seconds=1)


@dataclass(frozen=True)
class Poller:
    identity: str
    last_access_time: datetime

    def age(self, now: datetime) -> timedelta:
        return max(timedelta(0), now - self.last_access_time)

    def polling(self, now: datetime) -> bool:
        return self.age(now) < POLL_WINDOW


@dataclass(frozen=True)
class Backlog:
    """The server's approximate figures for a queue type (it refreshes them every few seconds)."""

    approximate_count: int
    approximate_age: timedelta
    add_rate: float  # tasks per second, over the last 30 s
    dispatch_rate: float


@dataclass(frozen=True)
class QueueType:
    """One type (workflow or activity) of one task queue: who polls it, what waits in it."""

    task_queue: str
    type: str
    pollers: list[Poller]
    backlog: Backlog | None  # None: the server reports no stats (one older than report_stats)
    at: datetime  # when this was read, by this machine's clock

    def polled(self) -> bool:
        return any(p.polling(self.at) for p in self.pollers)

    def as_dict(self) -> dict[str, Any]:
        backlog = self.backlog
        return {
            "task_queue": self.task_queue,
            "type": self.type,
            "polled": self.polled(),
            "pollers": [
                {
                    "identity": p.identity,
                    "last_access_time": p.last_access_time.isoformat(),
                    "seconds_since": round(p.age(self.at).total_seconds(), 1),
                    "polling": p.polling(self.at),
                }
                for p in self.pollers
            ],
            "backlog": None
            if backlog is None
            else {
                "approximate_count": backlog.approximate_count,
                "approximate_age_seconds": round(backlog.approximate_age.total_seconds(), 3),
                "add_rate_per_second": round(backlog.add_rate, 3),
                "dispatch_rate_per_second": round(backlog.dispatch_rate, 3),
            },
        }


async def describe(client: Client, task_queues: Sequence[str]) -> list[QueueType]:
    """Each of `task_queues`, both its types, in that order (one DescribeTaskQueue each, at once)."""
    with rpc_errors():
        return await _describe_all(client, task_queues)


async def polls(client: Client, task_queue: str, kind: str = "workflow") -> bool:
    """Whether a worker polls `task_queue` for `kind` tasks now (one DescribeTaskQueue)."""
    with rpc_errors():
        return (await _describe(client, task_queue, kind)).polled()


async def _describe_all(client: Client, task_queues: Sequence[str]) -> list[QueueType]:
    return list(await asyncio.gather(*(_describe(client, queue, kind) for queue in task_queues for kind in TYPES)))


async def _describe(client: Client, task_queue: str, kind: str) -> QueueType:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    types = {"workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY}
    answer = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=types[kind],
            report_stats=True,  # an older server ignores it and sends no stats
        )
    )
    backlog = None
    if answer.HasField("stats"):
        stats = answer.stats
        backlog = Backlog(
            approximate_count=stats.approximate_backlog_count,
            approximate_age=stats.approximate_backlog_age.ToTimedelta(),
            add_rate=stats.tasks_add_rate,
            dispatch_rate=stats.tasks_dispatch_rate,
        )
    pollers = [Poller(p.identity, p.last_access_time.ToDatetime(tzinfo=UTC)) for p in answer.pollers]
    pollers.sort(key=lambda p: p.last_access_time, reverse=True)
    return QueueType(task_queue, kind, pollers, backlog, at=datetime.now(UTC))


def unpolled(rows: Sequence[QueueType]) -> list[QueueType]:
    """The queue types nobody polls."""
    return [row for row in rows if not row.polled()]


def polled_by(rows: Sequence[QueueType], identity: str, before: Sequence[QueueType]) -> bool:
    """Whether `identity` polled every type of `rows` since `before` was read: a poll newer than
    any the server knew of then (a process that had this identity earlier left its own there).
    Server times against server times, so this machine's clock does not matter."""
    known = {(r.task_queue, r.type, p.identity): p.last_access_time for r in before for p in r.pollers}
    return all(
        any(
            p.identity == identity and p.last_access_time > known.get((r.task_queue, r.type, identity), _EPOCH)
            for p in r.pollers
        )
        for r in rows
    )


_EPOCH = datetime.min.replace(tzinfo=UTC)


async def wait_polled(
    client: Client,
    task_queues: Sequence[str],
    *,
    timeout: timedelta | None,
    patience: Patience | None = None,
    interval: timedelta = CHECK_INTERVAL,
    waiting: Callable[[], None] | None = None,
) -> tuple[bool, list[QueueType]]:
    """Ask every `interval` until every type of every queue is polled, or `timeout` passes:
    (polled, what was last read). `waiting` is called once, when the first look finds none.
    An outage of the server is ridden out as waiting commands do."""
    from temporalio.service import RPCError

    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout.total_seconds()
    outage = Outage(client, f"waiting for a worker to poll {', '.join(task_queues)}", patience, timeout)
    told = False
    with rpc_errors():
        while True:
            try:
                rows = await _describe_all(client, task_queues)
                outage.over()
            except RPCError as exc:
                if not is_outage(exc):
                    raise
                await outage.ride(exc)  # raises UnreachableError once the outage outlasts the patience
                continue
            if not unpolled(rows):
                return True, rows
            if waiting is not None and not told:
                waiting()
                told = True
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False, rows
            await asyncio.sleep(interval.total_seconds() if left is None else min(interval.total_seconds(), left))
