"""A clean stop for ``poselabel run`` from the command line: Ctrl-C (or SIGTERM) ends the job
and its workers and prints one line saying what was done and how to resume.

The command line forks: the child runs the job with SIGINT ignored, a disposition every
process it starts inherits (Python keeps an ignored SIGINT ignored), so the terminal's
Ctrl-C reaches only the parent, not Beam's worker processes, which would each print a
traceback or abort. The parent waits; on SIGINT or SIGTERM it kills the child and every
process descended from it (the job, Beam's SDK worker processes, a local Dask cluster),
removes the output's lease if the job held it, and prints e.g.
``poselabel run: interrupted after 3 of 10 shards; rerun the same command to resume``.
Killing is safe: every output file is replaced whole and a shard counts as done only once
its marker is written (``io/outputs.py``). A Dataflow or Flink job keeps running on its
cluster: stop it there.
"""
from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def run_supervised(work: Callable[[], int], output: str, command: str = "run") -> int:
    """``work()``'s exit status, run in a forked child of its own session; on SIGINT or SIGTERM
    the child's process group is killed and one line is printed (status 130)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: the job, deaf to the terminal's Ctrl-C (the parent handles it)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        code = 1
        try:
            code = work()
        except Exception:  # printed as Python would: os._exit below ends the child before that
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    stopped = []

    def stop(signum, frame):
        if not stopped:
            stopped.append(signum)
            kill_tree(pid)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not stopped:
        return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1
    print(f"poselabel {command}: {interrupted_line(output, pid)}", file=sys.stderr)
    return INTERRUPTED


def kill_tree(pid: int) -> None:
    """SIGKILL process ``pid`` and its descendants (found in ``/proc``). All are stopped first
    (SIGSTOP, parents first, twice for any started meanwhile), so that none sees another die
    and prints about it before its own end."""
    tree: list[int] = []
    for _ in range(2):
        for p in _descendants(pid):
            if p not in tree:
                tree.append(p)
                _signal(p, signal.SIGSTOP)
    for p in tree:
        _signal(p, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # it had ended


def _descendants(pid: int) -> list[int]:
    """``pid`` and the processes descended from it, parents first (``[pid]`` without ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue  # self, thread-self, sys, ...
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])  # the name may hold spaces
        except (OSError, ValueError, IndexError):
            continue  # not a process, or gone
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        found.append(p)
        stack.extend(children.get(p, []))
    return found


def interrupted_line(output: str, pid: int) -> str:
    """What the killed job (process ``pid``) had done, and how to resume; removes its lease."""
    # Beam is imported only here, after the fork: nothing that may start threads comes before it.
    from apache_beam.io.filesystem import BeamIOError

    from poselabel.io import lease, outputs

    held = lease.read_lease(output)
    if held is None or held.pid != pid:
        return "interrupted before labelling began; nothing was written"
    lease.release_if_held_by(output, pid=pid)
    _remove_progress(output)
    try:
        todo = outputs.read_json(outputs.join(output, "_runs", f"{held.run_id}.json"))["shards"]["todo"]
    except (OSError, BeamIOError, ValueError, KeyError, TypeError):
        todo = None
    done = sum(m.get("run_id") == held.run_id for m in outputs.done_shards(output).values())
    of = f" of {todo}" if todo is not None else ""
    return f"interrupted after {done}{of} shards; rerun the same command to resume"


def _remove_progress(output: str) -> None:
    """The killed job's ``OUT/_progress/`` files (read only by a live run's progress display)."""
    from apache_beam.io.filesystem import BeamIOError
    from apache_beam.io.filesystems import FileSystems

    from poselabel.io import outputs

    try:
        found = FileSystems.match([outputs.join(output, "_progress", "*.json")])[0].metadata_list
        if found:
            FileSystems.delete([m.path for m in found])
    except (OSError, BeamIOError):
        pass  # left behind, harmless: the next run rewrites them
