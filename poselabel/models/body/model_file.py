"""Reading a user's SMPL-X ``.npz`` without unpickling it, and checking its arrays.

``smplx`` loads ``.npz`` files with ``np.load(allow_pickle=True)`` and reads every member,
so a member holding Python objects (a pickle) would run code on load. Here the file is read
with ``allow_pickle=False``: a member holding objects is never unpickled (numpy refuses it
from the array header, before the pickle); the arrays smplx needs are checked (names,
dtypes, shapes consistent with one vertex count V and SMPL-X's 55 joints); and smplx is
handed a private copy of plain arrays only (``safe_copy``). The real ``SMPLX_NEUTRAL.npz``
holds two object members smplx does not use (``joint2num``, ``part2num``): they are left
out of the copy, unread. A file that fails a check raises ``InputError`` (one line).
"""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from poselabel.config import InputError
from poselabel.io.files import read_file

NUM_JOINTS = 55  # SMPL-X's skeleton
NUM_HAND_POSE = 45  # 15 joints x 3 per hand
FLOAT, INT = "f", "iu"

# name -> (dtype kinds, shape with V: vertices, J: joints, P: pose basis, None: any size)
REQUIRED: dict[str, tuple[str, tuple]] = {
    "v_template": (FLOAT, ("V", 3)),
    "f": (INT, (None, 3)),
    "shapedirs": (FLOAT, ("V", 3, None)),
    "posedirs": (FLOAT, ("V", 3, "P")),
    "J_regressor": (FLOAT, ("J", "V")),
    "kintree_table": (INT, (2, "J")),
    "weights": (FLOAT, ("V", "J")),
    "hands_componentsl": (FLOAT, (None, NUM_HAND_POSE)),
    "hands_componentsr": (FLOAT, (None, NUM_HAND_POSE)),
    "hands_meanl": (FLOAT, (NUM_HAND_POSE,)),
    "hands_meanr": (FLOAT, (NUM_HAND_POSE,)),
    "lmk_faces_idx": (INT, ("L",)),
    "lmk_bary_coords": (FLOAT, ("L", 3)),
    "dynamic_lmk_faces_idx": (INT, (None, None)),
    "dynamic_lmk_bary_coords": (FLOAT, (None, None, 3)),
}
FIX = "give an SMPL-X .npz of plain numeric arrays (e.g. SMPLX_NEUTRAL.npz), or leave --body-model out"


def _refuse(path: str, reason: str) -> InputError:
    return InputError(f"--body-model {path}: {reason}; {FIX}")


def read_body_arrays(path: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """``(plain arrays by name, names of the members holding objects, left unread)`` of the
    ``.npz`` at ``path`` (local or ``gs://``), its SMPL-X arrays checked; ``InputError`` otherwise."""
    try:
        npz = np.load(io.BytesIO(read_file(path)), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise _refuse(path, f"not an .npz of arrays ({type(exc).__name__})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _refuse(path, "a single .npy array, not an .npz of named arrays")
    arrays, objects = {}, []
    with npz:
        for name in npz.files:
            try:
                arrays[name] = npz[name]
            except ValueError as exc:
                if "allow_pickle" not in str(exc):
                    raise _refuse(path, f"array {name!r} is unreadable ({exc})") from None
                objects.append(name)  # numpy refused it from its header: nothing was unpickled
    pickled = sorted(set(objects) & set(REQUIRED))
    if pickled:
        raise _refuse(path, f"array {pickled[0]!r} holds Python objects (a pickle, which can run code): refused")
    missing = sorted(set(REQUIRED) - set(arrays))
    if missing:
        raise _refuse(path, f"not an SMPL-X model, it lacks {', '.join(missing)}")
    _check_shapes(path, arrays)
    return arrays, objects


def _check_shapes(path: str, arrays: dict[str, np.ndarray]) -> None:
    sizes = {"V": arrays["v_template"].shape[0], "J": NUM_JOINTS, "L": arrays["lmk_faces_idx"].shape[0],
             "P": 9 * (NUM_JOINTS - 1)}
    for name, (kinds, shape) in REQUIRED.items():
        a = arrays[name]
        if a.dtype.kind not in kinds:
            want = "floats" if kinds == FLOAT else "integers"
            raise _refuse(path, f"array {name!r} has dtype {a.dtype}, expected {want}")
        expected = tuple(sizes.get(d, d) if isinstance(d, str) else d for d in shape)
        if a.ndim != len(expected) or any(e is not None and s != e for s, e in zip(a.shape, expected)):
            text = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
            raise _refuse(path, f"array {name!r} has shape {a.shape}, expected {text} "
                                f"(V={sizes['V']} vertices, {NUM_JOINTS} joints)")
    faces = arrays["f"]
    if faces.size and (faces.min() < 0 or faces.max() >= sizes["V"]):
        raise _refuse(path, f"array 'f' indexes vertices outside 0..{sizes['V'] - 1}")
    if arrays["shapedirs"].shape[2] < 10:
        raise _refuse(path, f"array 'shapedirs' has {arrays['shapedirs'].shape[2]} shape directions, expected >= 10")
    if not np.isfinite(arrays["v_template"]).all():
        raise _refuse(path, "array 'v_template' holds NaN or infinite values")


def check_body_model(path: str | None) -> None:
    """Refuse (``InputError``) a body-model file smplx should not meet; None (the default) passes."""
    if path is not None:
        read_body_arrays(path)


def safe_copy(path: str, folder: str) -> str:
    """A copy of the checked model at ``path`` in ``folder`` (``SMPLX_NEUTRAL.npz``, the name smplx
    reads the model type from) holding plain arrays only: what ``smplx.create`` may load with
    ``allow_pickle=True``. Members holding objects are left out, unread."""
    arrays, _ = read_body_arrays(path)
    local = os.path.join(folder, "SMPLX_NEUTRAL.npz")
    with open(local, "wb") as f:
        np.savez(f, **arrays)
    return local
