"""One writer per output folder: the lease ``OUT/_lease.json`` (local or ``gs://``).

A run holds the lease from after its plan until it ends. The lease records who holds it
(``owner``, ``host``, ``pid``, ``run_id``, ``started_at``) and a ``heartbeat_at`` (seconds
since the epoch) that a thread rewrites every ``stale_s / 10`` seconds (at most every 30 s).
A second run on the same output is refused (``LeaseHeld``, one line naming the holder and
how to take over) while the lease's heartbeat is younger than ``stale_s``; an older lease
(its run was killed, its machine lost) is taken over, as is a lease held by a process of this
host that no longer exists (a run killed with SIGKILL); ``take_over`` takes a live one.

Claiming is write-then-confirm: the claimant writes its record (locally: created
exclusively when no lease exists), waits ``SETTLE_S`` (remote) and reads the lease back;
if another claimant's record is there, the later writer won and this one is refused. The
heartbeat thread also reads before it writes: a run whose lease was taken over stops
heartbeating and logs an error, and its end does not remove the new holder's lease.
"""
from __future__ import annotations

import dataclasses
import getpass
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from google.api_core.exceptions import NotFound  # what Beam's GCS file system raises for a missing object

from poselabel.config import InputError
from poselabel.io import files, outputs

log = logging.getLogger(__name__)

LEASE = "_lease.json"
SETTLE_S = 1.0  # remote claims: how long a later writer has to overwrite ours before we read back


class LeaseHeld(InputError):
    """Another run holds the output's lease (the command line prints this one line, status 2)."""


@dataclass(frozen=True)
class LeaseRecord:
    run_id: str
    owner: str
    host: str
    pid: int
    started_at: float  # seconds since the epoch
    heartbeat_at: float  # seconds since the epoch

    def describe(self, now: float) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        return (f"run {self.run_id} ({self.owner}@{self.host}, pid {self.pid}, started {started}, "
                f"last heartbeat {max(0.0, now - self.heartbeat_at):.0f} s ago)")


def lease_path(out: str) -> str:
    return outputs.join(out, LEASE)


def read_lease(out: str) -> LeaseRecord | None:
    """The output's lease, or None when there is none (or it is unreadable: being replaced)."""
    path = lease_path(out)
    try:
        if not FileSystems.exists(path):
            return None
        data = json.loads(outputs.read_bytes(path))
        return LeaseRecord(**{f.name: data[f.name] for f in dataclasses.fields(LeaseRecord)})
    except (OSError, BeamIOError, NotFound, ValueError, KeyError, TypeError):
        return None  # gone between the two calls, or half-written by another file system


def _write(out: str, record: LeaseRecord) -> None:
    outputs.write_atomic(lease_path(out), json.dumps(dataclasses.asdict(record), indent=2).encode())


def _create_local(out: str, record: LeaseRecord) -> bool:
    """Create the local lease only if there is none; False when one exists."""
    path = lease_path(out)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps(dataclasses.asdict(record), indent=2).encode())
    return True


def _held_message(out: str, holder: LeaseRecord, stale_s: float) -> str:
    return (f"--output {out} is in use by {holder.describe(time.time())}; wait for it to end, or if it is "
            f"dead rerun with --take-over (a lease without a heartbeat for {stale_s:.0f} s is taken over "
            f"by itself)")


class Lease:
    """``with Lease(out, run_id, stale_s=..., take_over=...):`` holds ``OUT/_lease.json``.

    ``__enter__`` claims it or raises ``LeaseHeld``; a daemon thread renews the heartbeat;
    ``__exit__`` stops the thread and removes the lease if it is still this run's.
    """

    def __init__(self, out: str, run_id: str, *, stale_s: float = 600.0, take_over: bool = False):
        self.out, self.stale_s, self.take_over = out, stale_s, take_over
        now = time.time()
        self.record = LeaseRecord(run_id=run_id, owner=_user(), host=socket.gethostname(), pid=os.getpid(),
                                  started_at=now, heartbeat_at=now)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="poselabel-lease", daemon=True)

    @property
    def interval(self) -> float:
        return min(30.0, self.stale_s / 10)

    def __enter__(self) -> "Lease":
        self.claim()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.release()

    def claim(self) -> None:
        remote = files.is_remote(self.out)
        if not remote and _create_local(self.out, self.record):
            return
        holder = read_lease(self.out)
        if holder is not None and holder.run_id != self.record.run_id:
            age = time.time() - holder.heartbeat_at
            if age < self.stale_s and not self.take_over and not _dead_here(holder):
                raise LeaseHeld(_held_message(self.out, holder, self.stale_s))
            log.warning("taking over the lease of %s on %s", holder.describe(time.time()), self.out)
        _write(self.out, self.record)
        if remote:
            time.sleep(SETTLE_S)
        now_held = read_lease(self.out)
        if now_held is None or now_held.run_id != self.record.run_id:
            raise LeaseHeld(_held_message(self.out, now_held or holder or self.record, self.stale_s))

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            current = read_lease(self.out)
            if current is not None and current.run_id != self.record.run_id:
                log.error("the lease on %s was taken over by %s; this run's writes now race it",
                          self.out, current.describe(time.time()))
                self.lost.set()
                return
            self.record = dataclasses.replace(self.record, heartbeat_at=time.time())
            try:
                _write(self.out, self.record)
            except (OSError, BeamIOError) as exc:  # the next beat tries again
                log.warning("could not renew the lease on %s: %s", self.out, exc)

    def release(self) -> None:
        release_if_held_by(self.out, run_id=self.record.run_id)


def release_if_held_by(out: str, *, run_id: str | None = None, pid: int | None = None) -> bool:
    """Remove the lease if this host's run ``run_id`` (or process ``pid``) holds it; True if removed."""
    current = read_lease(out)
    if current is None or (run_id is not None and current.run_id != run_id):
        return False
    if pid is not None and (current.pid != pid or current.host != socket.gethostname()):
        return False
    try:
        FileSystems.delete([lease_path(out)])
    except (OSError, BeamIOError, NotFound):
        return False
    return True


def _dead_here(holder: LeaseRecord) -> bool:
    """True when ``holder`` ran on this host and its process is gone."""
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
