"""Reading and writing files by path, local or remote (``gs://`` and every Beam file system).

Remote paths go through ``apache_beam.io.filesystems.FileSystems``, imported
only when a remote path is used; local paths use plain ``open``. ``models/``
loads body models and checkpoints through these helpers and so never imports
Beam itself.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator


def is_remote(path: str) -> bool:
    return "://" in path


def join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name if is_remote(directory) else os.path.join(directory, name)


def anonymous_for_emulator() -> None:
    """With ``STORAGE_EMULATOR_HOST`` set (a local ``gcp-storage-emulator``), make Beam's GCS
    client connect anonymously at once: Beam otherwise looks for Google credentials with four
    back-off retries (about 30 s in every process) before connecting anonymously anyway. Sets
    Beam's credentials cache (``apache_beam.internal.gcp.auth``), so it is a no-op without Beam's
    gcp extra or once credentials were looked up."""
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    try:
        from apache_beam.internal.gcp import auth
    except ImportError:
        return
    creds = getattr(auth, "_Credentials", None)
    if creds is None or not hasattr(creds, "_credentials_init"):
        return
    with creds._credentials_lock:
        if not creds._credentials_init:
            creds._credentials, creds._credentials_init = None, True


def check_credentials(paths: list[str | None], flag: str = "") -> None:
    """Refuse (``InputError``, one line, in well under a second without a metadata server) to go
    on when a path is ``gs://`` and no Google Cloud credentials are found: Beam would otherwise
    retry with back-off for about a minute and a half before failing. Skipped when
    ``STORAGE_EMULATOR_HOST`` points the client at an emulator (no credentials needed)."""
    buckets = sorted({"gs://" + p[5:].split("/", 1)[0] for p in paths if p and p.startswith("gs://")})
    if not buckets or os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    import google.auth  # only for gs:// paths
    from google.auth.exceptions import DefaultCredentialsError

    from poselabel.config import InputError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        raise InputError(f"{buckets[0]}: no Google Cloud credentials found; run `gcloud auth application-default "
                         "login` or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file") from None


def read_file(path: str) -> bytes:
    """Bytes of a local or remote (``gs://``) file."""
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        return f.read()


@contextlib.contextmanager
def atomic_local_file(path: str | os.PathLike) -> Iterator:
    """A binary file handle whose contents appear at the local ``path`` only when the block
    ends without an error: written under a unique hidden name beside it (mode 0644), then
    renamed over ``path``; on an error the temporary file is removed and ``path`` untouched."""
    path = os.fspath(path)
    head, tail = os.path.split(path)
    os.makedirs(head or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{tail}.", suffix=".tmp", dir=head or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


OBJECT_STORES = ("gs", "s3")  # whole-object writes: atomic without a rename


def write_file(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole: a reader sees the old bytes or the new, never none.

    - local: a unique hidden temporary sibling, then ``os.replace`` (atomic on POSIX; the old
      file is never deleted first, so concurrent writers and readers never meet a gap);
    - object stores (``gs://``, ``s3://``): one upload to the final name (an object write is
      atomic: readers see the previous object until the new one is complete);
    - other Beam file systems: a unique temporary sibling renamed over ``path``; only when that
      rename fails because ``path`` exists is the old file deleted first.
    """
    if not is_remote(path) or path.startswith("file://"):
        with atomic_local_file(path.removeprefix("file://")) as f:
            f.write(data)
        return
    from apache_beam.io.filesystem import BeamIOError
    from apache_beam.io.filesystems import FileSystems

    if path.split("://", 1)[0] in OBJECT_STORES:
        with FileSystems.create(path) as f:
            f.write(data)
        return
    head, tail = FileSystems.split(path)
    # Hidden name: Parquet dataset readers skip files starting with "." or "_".
    tmp = FileSystems.join(head, f".{tail}.tmp-{uuid.uuid4().hex}")
    with FileSystems.create(tmp) as f:
        f.write(data)
    try:
        FileSystems.rename([tmp], [path])
    except (BeamIOError, OSError):
        if not FileSystems.exists(path):
            raise
        FileSystems.delete([path])
        FileSystems.rename([tmp], [path])


def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(path)


@contextlib.contextmanager
def local_dir(path: str) -> Iterator[str]:
    """A local directory with the files of ``path`` (remote directories are copied to a temp dir)."""
    if not is_remote(path):
        yield path
        return
    from apache_beam.io.filesystems import FileSystems

    tmp = tempfile.mkdtemp(prefix="poselabel-ckpt-")
    try:
        matches = FileSystems.match([path.rstrip("/") + "/*"])[0].metadata_list
        if not matches:
            raise FileNotFoundError(f"no files under {path!r}")
        for m in matches:
            with FileSystems.open(m.path) as src, open(os.path.join(tmp, m.path.rsplit("/", 1)[-1]), "wb") as dst:
                shutil.copyfileobj(src, dst)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_to_local(path: str, folder: str) -> str:
    """Copy the file at ``path`` into the local ``folder``, keeping its base name; returns the copy's path."""
    local = os.path.join(folder, path.rstrip("/").rsplit("/", 1)[-1])
    with open(local, "wb") as dst:
        dst.write(read_file(path))
    return local


def file_identity(path: str) -> str:
    """A local file's resolved path, size and modification time (YOLO checkpoints are local files)."""
    st = os.stat(path)
    return f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"
