"""What the sharing tests run in spawned processes. This module imports nothing heavy, so that a
child process starts in a fraction of the test module's import time (torch, duckdb)."""
from __future__ import annotations

import os

from poselabel.transforms import shared_models


class PidEcho:
    """Records the pid of the process that built it; ``whoami`` answers from wherever it lives."""

    def __init__(self, log_path: str):
        with open(log_path, "a") as f:
            f.write(f"{os.getpid()}\n")

    def whoami(self, x):
        return os.getpid(), x * 2


def client(mode, key, log_path, barrier, results):
    echo = shared_models.acquire(mode, key, lambda: PidEcho(log_path))
    pid, doubled = echo.whoami(21)
    results.put((os.getpid(), pid, doubled, shared_models.take_loads(key)))
    barrier.wait(timeout=60)  # the serving process must outlive the other's call


def first_server(key, log_path, results, b_called):
    echo = shared_models.acquire("machine", key, lambda: PidEcho(log_path))
    results.put(("a", os.getpid(), echo.whoami(1)))
    b_called.wait(timeout=60)  # then exit: the network's server goes with this process


def survivor(key, log_path, results, b_called, a_gone):
    echo = shared_models.acquire("machine", key, lambda: PidEcho(log_path))
    results.put(("b1", os.getpid(), echo.whoami(1)))
    b_called.set()
    a_gone.wait(timeout=60)
    results.put(("b2", os.getpid(), echo.whoami(2)))  # reconnects: serves it itself now
