"""How a stage's network is shared between the threads and processes of a worker machine.

``models.share`` (``poselabel/config.py``) chooses, for the stages that hold a
network (the ultralytics detector, the Tz and pose networks):

- ``none``: every DoFn instance loads its own copy (one per thread of every
  process; on the Dask runner one per partition, which sets a DoFn up and
  tears it down for each);
- ``process`` (default): one copy per worker process, shared by its threads and
  kept for the life of the process (so the Dask runner's per-partition set-up
  finds it loaded);
- ``machine``: one copy per machine, served by the first process that needs it
  through Beam's ``MultiProcessShared`` (what RunInference's ``large_model=True``
  does); the other processes call it through a proxy, so their arguments and
  results are pickled over a local socket: only plain numpy arrays, tuples and
  dicts cross it (full images for the Tz and pose networks, a few MB each).
  When the serving process dies, a caller's next call serves it anew (one
  reconnection per call).

  The server only answers callers that know a secret (``share_authkey``), never Beam's
  fixed key: the run's own, ``POSELABEL_SHARE_AUTHKEY`` (hex), which ``pipelines/runners.py``
  sets for the worker processes it starts (direct runner, local Dask cluster); elsewhere
  (Dataflow, Flink, an existing Dask cluster) a random key of the user's, kept in a folder
  only they can read (``<tmp>/poselabel-share-<uid>/authkey``), shared by their processes on
  the machine. The servers' address and lock files live in that folder too, in a subfolder
  named by a digest of the key, so runs with different keys never meet.

Beam's ``Shared`` is not used for ``process``: it keeps only the most recently
acquired object of a process alive once its DoFns let go, so on the Dask runner
the detector, Tz and pose stages would evict each other's networks at every
partition.

A shared copy is keyed by the stage and the identity of its weights (the
checkpoint's recorded sha256, or a YOLO file's path, size and mtime), so a
long-lived process (a Dask worker serving several jobs) reuses a loaded network
for an unchanged checkpoint and loads a changed one afresh. Loads are counted:
``take_loads(key)`` returns the loads done in this process since it was last
called, for the ``<stage>_model_loads`` counter.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
from typing import Any, Callable

from apache_beam.utils import multi_process_shared

from poselabel.config import MODEL_SHARE_MODES

log = logging.getLogger(__name__)

_lock = threading.Lock()
_authkey_lock = threading.Lock()  # held while Beam connects or serves (the load runs under it)
_key_locks: dict[str, threading.Lock] = {}
_process_models: dict[str, Any] = {}
_pending_loads: collections.Counter = collections.Counter()

AUTHKEY_ENV = "POSELABEL_SHARE_AUTHKEY"  # hex; set by pipelines/runners.py for the workers it starts


def share_key(stage: str, *parts: Any) -> str:
    """A file-name-safe key for ``stage``'s network: ``poselabel-<stage>-<hash of parts>``."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:20]
    return f"poselabel-{stage}-{digest}"


class _Loader:
    """The zero-argument constructor ``MultiProcessShared`` needs; counts the load in this process."""

    def __init__(self, key: str, build: Callable[[], Any]):
        self.key, self.build = key, build

    def __call__(self) -> Any:
        obj = self.build()
        with _lock:
            _pending_loads[self.key] += 1
        log.info("loaded %s in process %d", self.key, os.getpid())
        return obj


def acquire(mode: str, key: str, build: Callable[[], Any]) -> Any:
    """``build()``'s object shared as ``mode`` says (see the module docstring).

    ``machine`` returns a proxy whose methods run in the serving process: call
    only methods (attributes and properties do not cross), with picklable
    numpy/tuple/dict arguments.
    """
    loader = _Loader(key, build)
    if mode == "none":
        return loader()
    if mode == "process":
        with _lock:  # one lock per key: other networks stay reachable while one loads
            key_lock = _key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in _process_models:
                _process_models[key] = loader()
            return _process_models[key]
    if mode == "machine":
        return _Served(key, loader)
    raise ValueError(f"models.share must be one of {', '.join(MODEL_SHARE_MODES)}, not {mode!r}")


def share_folder() -> str:
    """``<tmp>/poselabel-share-<uid>``: this user's private folder (mode 0700) for the key and the
    servers' address and lock files; ``PermissionError`` if another user owns it or can read it."""
    folder = os.path.join(tempfile.gettempdir(), f"poselabel-share-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    st = os.stat(folder)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{folder}: not a private folder of this user (owner {st.st_uid}, "
                              f"mode {st.st_mode & 0o777:o}); remove it")
    return folder


def share_authkey() -> bytes:
    """The secret machine-shared servers and their callers authenticate with (module docstring)."""
    if os.environ.get(AUTHKEY_ENV):
        return bytes.fromhex(os.environ[AUTHKEY_ENV])
    path = os.path.join(share_folder(), "authkey")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # created whole, once: the first process's key wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


class _Served:
    """A machine-shared object's proxy that reconnects once when its serving process is gone.

    The first process to need the object serves it; if that process dies (a Dask
    worker restarted, an SDK process killed), the others' calls fail with a
    connection error. The call is then retried once after acquiring again, which
    finds the address stale and serves the object from this process (a load).
    Only method calls cross (``served.method(*args)``); attributes do not.
    """

    def __init__(self, key: str, loader: _Loader):
        self._key, self._loader = key, loader
        self._proxy = self._connect()

    def _connect(self):
        authkey = share_authkey()
        folder = os.path.join(share_folder(), hashlib.sha256(authkey).hexdigest()[:16])  # one per key
        os.makedirs(folder, mode=0o700, exist_ok=True)
        with _authkey_lock:  # Beam reads its module's AUTH_KEY when it connects or serves: ours, not b"mps"
            multi_process_shared.AUTH_KEY = authkey
            # always_proxy: the serving process goes through the proxy too, so every process sees one
            # interface (methods only) and only the serving process's threads touch the network.
            return multi_process_shared.MultiProcessShared(self._loader, tag=self._key, path=folder,
                                                           always_proxy=True).acquire()

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            try:
                return getattr(self._proxy, name)(*args, **kwargs)
            except (ConnectionError, EOFError) as exc:  # the serving process is gone
                log.warning("%s: lost its serving process (%r); reconnecting", self._key, exc)
                self._proxy = self._connect()
                return getattr(self._proxy, name)(*args, **kwargs)

        return call


def take_loads(key: str) -> int:
    """Loads of ``key`` done in this process since the last call (0 when none)."""
    with _lock:
        return _pending_loads.pop(key, 0)
