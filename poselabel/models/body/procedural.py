"""A procedural body model written in SMPL-X's own ``.npz`` format.

The real SMPL-X file is licensed and cannot be shipped, so the project makes a
stand-in that the real ``smplx`` library loads unchanged
(``smplx.create(path, model_type="smplx", ext="npz", ...)``); the real
``SMPLX_NEUTRAL.npz`` drops in by path. Nothing downstream may assume a vertex
count: this model has about 12.6k vertices at ``resolution=1.0`` (the real one
10,475). At least 9,930 vertices are required, because smplx's vertex-joint
selector reads fixed SMPL-X vertex ids up to 9,929; the generator moves
vertices so that those ids (nose, eyes, ears, toes, heels, finger tips) sit
where SMPL-X has them.

Contents (``V`` vertices, ``F`` faces), all in SMPL-X's model frame (metres,
y up, x to the body's left, z forward, pelvis at the origin, T-pose):

- ``v_template`` (V, 3), ``f`` (F, 3) outward-oriented triangles;
- ``J_regressor`` (55, V), rows sum to 1, ``J_regressor @ v_template`` = the joints;
- ``kintree_table`` (2, 55), ``weights`` (V, 55) skinning weights (rows sum to 1);
- ``shapedirs`` (V, 3, 400): 10 shape directions (see ``shape_space``) then
  zeros up to 300, then 10 small expression directions at 300..309;
- ``posedirs`` (V, 3, 486) zeros (no pose correctives);
- ``hands_componentsl/r`` (45, 45) orthonormal, ``hands_meanl/r`` (45,);
- ``lmk_faces_idx`` (51,), ``lmk_bary_coords`` (51, 3),
  ``dynamic_lmk_faces_idx`` (79, 17), ``dynamic_lmk_bary_coords`` (79, 17, 3).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.optimize import lsq_linear
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from poselabel.io.files import atomic_local_file
from poselabel.models.body import procedural_parts as pp
from poselabel.models.body.procedural_shape import expression_space, shape_space

GENERATOR_VERSION = 1
MIN_VERTICES = 9930  # smplx's SMPL-X vertex-joint selector reads vertex 9929


def default_body_model_path(seed: int = 0) -> str:
    """The cached procedural model file, generated on first use (atomically).

    Lives in ``$POSELABEL_CACHE`` or ``~/.cache/poselabel``; the file name
    carries the generator version and seed, so a changed generator never
    serves a stale file.
    """
    cache = Path(os.environ.get("POSELABEL_CACHE") or Path.home() / ".cache" / "poselabel")
    path = cache / f"SMPLX_NEUTRAL_PROCEDURAL_v{GENERATOR_VERSION}_s{seed}.npz"
    if not path.exists():
        write_procedural_body_model(str(path), seed=seed)
    return str(path)


def write_procedural_body_model(path: str, seed: int = 0, resolution: float = 1.0) -> str:
    """Write the procedural model to ``path`` (an ``.npz``; written to a temp file, then renamed).

    Name the file ``SMPLX_*.npz``: ``smplx.create(FILE)`` takes the model type
    from the file name's prefix. Deterministic for ``(seed, resolution)``.
    Returns ``path``.
    """
    arrays = build_procedural_body_model(seed=seed, resolution=resolution)
    with atomic_local_file(path) as fh:
        np.savez_compressed(fh, **arrays)
    return str(Path(path))


def build_procedural_body_model(seed: int = 0, resolution: float = 1.0) -> dict[str, np.ndarray]:
    """All arrays of the model file (see the module docstring), as a dict."""
    rng = np.random.default_rng(seed)
    joints, extra = pp.rest_joints()
    specs = pp.part_specs(resolution)
    verts, faces, axis_pts, part_of = [], [], [], []
    offset = 0
    for i, spec in enumerate(specs):
        v, f, a = pp.tessellate(spec)
        verts.append(v), faces.append(f + offset), axis_pts.append(a)
        part_of.append(np.full(len(v), i))
        offset += len(v)
    verts, faces = np.concatenate(verts), np.concatenate(faces)
    axis_pts, part_of = np.concatenate(axis_pts), np.concatenate(part_of)
    if len(verts) < MIN_VERTICES:
        raise ValueError(f"resolution {resolution} gives {len(verts)} vertices; smplx needs >= {MIN_VERTICES}")

    # 1. Put SMPL-X's semantic vertex ids (nose, ears, toes, finger tips) at matching places.
    perm = _semantic_permutation(verts, extra)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    verts, axis_pts, part_of, faces = verts[perm], axis_pts[perm], part_of[perm], inv[faces]

    # 2. Skinning weights, joint regressor, shape and expression spaces.
    weights = skinning_weights(verts, part_of, specs, joints, extra)
    j_regressor = joint_regressor(verts, joints)
    groups = np.array([s.group for s in specs])[part_of]
    names = np.array([s.name for s in specs])[part_of]
    shapedirs = np.zeros((len(verts), 3, 400), dtype=np.float32)
    shapedirs[:, :, :10] = shape_space(verts, axis_pts, groups, names)
    head = np.flatnonzero(groups == "head")
    shapedirs[:, :, 300:310] = expression_space(verts, head, rng)

    # 3. Hands (PCA over 15 joints x 3) and face landmarks, as the format requires.
    comps_l = np.linalg.qr(rng.normal(size=(45, 45)))[0].T.astype(np.float32)
    comps_r = np.linalg.qr(rng.normal(size=(45, 45)))[0].T.astype(np.float32)
    mean_l = np.tile([0.0, 0.0, 0.12], 15).astype(np.float32)   # a slight, relaxed curl
    mean_r = np.tile([0.0, 0.0, -0.12], 15).astype(np.float32)
    face_faces = _front_head_faces(verts, faces, head)
    lmk = face_faces[np.linspace(0, len(face_faces) - 1, 51).astype(int)]
    dyn = face_faces[np.linspace(0, len(face_faces) - 1, 79 * 17).astype(int) % len(face_faces)]
    third = np.full(3, 1.0 / 3.0, dtype=np.float32)
    kintree = np.stack([pp.PARENTS, np.arange(pp.NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = np.iinfo(np.uint32).max  # as in the real file; smplx sets it to -1
    return {
        "v_template": verts.astype(np.float32), "f": faces.astype(np.int32),
        "J_regressor": j_regressor.astype(np.float32), "kintree_table": kintree,
        "weights": weights.astype(np.float32), "shapedirs": shapedirs,
        "posedirs": np.zeros((len(verts), 3, 486), dtype=np.float32),
        "hands_componentsl": comps_l, "hands_componentsr": comps_r,
        "hands_meanl": mean_l, "hands_meanr": mean_r,
        "lmk_faces_idx": lmk.astype(np.int64), "lmk_bary_coords": np.tile(third, (51, 1)),
        "dynamic_lmk_faces_idx": dyn.reshape(79, 17).astype(np.int64),
        "dynamic_lmk_bary_coords": np.tile(third, (79, 17, 1)),
        "joint_names": np.array(pp.JOINT_NAMES), "part_names": np.array([s.name for s in specs]),
        "vertex_part": part_of.astype(np.int32),
        "procedural_version": np.array(GENERATOR_VERSION),
    }


def _bone_ends(joints: np.ndarray, extra: dict[str, np.ndarray]) -> np.ndarray:
    """(55, 3) end point of each joint's bone (the segment that joint rotates)."""
    ends = joints.copy()
    child = {0: 3, 3: 6, 6: 9, 9: 12, 12: 15}
    for side in ("left", "right"):
        j = lambda n: pp.J[f"{side}_{n}"]  # noqa: E731
        child.update({j("hip"): j("knee"), j("knee"): j("ankle"), j("ankle"): j("foot"),
                      j("collar"): j("shoulder"), j("shoulder"): j("elbow"), j("elbow"): j("wrist"),
                      j("wrist"): j("middle1")})
        for f in ("index", "middle", "pinky", "ring", "thumb"):
            child.update({j(f"{f}1"): j(f"{f}2"), j(f"{f}2"): j(f"{f}3")})
            ends[j(f"{f}3")] = extra[f"{side}_{f}_tip"]
        ends[j("foot")] = extra[f"{side}_toe_tip"]
        ends[j("eye_smplhf")] = joints[j("eye_smplhf")] + (0, 0, 0.01)
    for parent, c in child.items():
        ends[parent] = joints[c]
    ends[pp.J["head"]] = extra["head_top"]
    ends[pp.J["jaw"]] = extra["chin"]
    return ends


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (N,) from points p (N, 3) to the segment a-b."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(ab @ ab, 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def skinning_weights(verts, part_of, specs, joints, extra) -> np.ndarray:
    """(V, 55) linear-blend-skinning weights.

    Each part may be skinned only by its own bones (``PartSpec.joints``); a
    vertex's weights are a softmin over its distances to those bones
    (temperature ``PartSpec.tau`` metres), so segments are rigid away from
    joints and blend smoothly within a few centimetres of them.
    """
    ends = _bone_ends(joints, extra)
    weights = np.zeros((len(verts), pp.NUM_JOINTS))
    for i, spec in enumerate(specs):
        idx = np.flatnonzero(part_of == i)
        cand = list(spec.joints)
        d = np.stack([_segment_distance(verts[idx], joints[j], ends[j]) + spec.joints[j] for j in cand], 1)
        w = np.exp(-(d - d.min(1, keepdims=True)) / spec.tau)
        w[w < 1e-3] = 0.0
        weights[np.ix_(idx, cand)] = w / w.sum(1, keepdims=True)
    return weights


def joint_regressor(verts: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(55, V) non-negative regressor with rows summing to 1 and ``R @ verts == joints``.

    Each joint is a smooth (Gaussian-like) average of the surface vertices
    around it, corrected to reproduce the joint exactly; the neighbourhood
    grows until the joint lies inside the hull of its vertices.
    """
    reg = np.zeros((len(joints), len(verts)))
    for j, p in enumerate(joints):
        dist = np.linalg.norm(verts - p, axis=1)
        radius = 1.3 * dist.min() + 1e-3
        for _ in range(30):
            idx = np.flatnonzero(dist <= radius)
            if len(idx) >= 8:
                w = _exact_weights(verts[idx], p, dist[idx], radius)
                if w is not None:
                    reg[j, idx] = w
                    break
            radius *= 1.25
        else:
            raise RuntimeError(f"no regressor for joint {pp.JOINT_NAMES[j]}")
    return reg


def _exact_weights(x: np.ndarray, p: np.ndarray, dist: np.ndarray, radius: float) -> np.ndarray | None:
    """Weights (K,) in [0, 1] close to a Gaussian of ``dist`` with ``w @ x == p`` and ``sum(w) == 1``."""
    w0 = np.exp(-0.5 * (dist / (0.5 * radius)) ** 2)
    w0 /= w0.sum()
    c = np.vstack([((x - p) / radius).T, np.ones(len(x))])  # scale-free constraints c @ w = [0, 0, 0, 1]
    rhs = np.array([0.0, 0.0, 0.0, 1.0])
    lam = 1000.0
    w = lsq_linear(np.vstack([lam * c, np.eye(len(x))]), np.concatenate([lam * rhs, w0]),
                   bounds=(0.0, 1.0), method="bvls").x
    if np.abs(c @ w - rhs).max() > 1e-3:
        return None
    # Polish to exactness: the minimum-norm correction (tiny; may dip a hair below 0).
    w += np.linalg.lstsq(c, rhs - c @ w, rcond=None)[0]
    return w if w.min() > -1e-4 else None


def _semantic_permutation(verts: np.ndarray, extra: dict[str, np.ndarray]) -> np.ndarray:
    """Vertex order putting smplx's named vertex ids (``vertex_ids['smplx']``) at the right places."""
    targets = {"nose": (0.0, 0.655, 0.125), "leye": (0.032, 0.675, 0.108), "reye": (-0.032, 0.675, 0.108),
               "lear": (0.079, 0.66, 0.01), "rear": (-0.079, 0.66, 0.01)}
    for side, s, short in (("left", 1.0, "l"), ("right", -1.0, "r")):
        toe = extra[f"{side}_toe_tip"]
        big, small, heel = ("LBigToe", "LSmallToe", "LHeel") if s > 0 else ("RBigToe", "RSmallToe", "RHeel")
        targets[big] = toe + (-0.025 * s, -0.01, 0.03)
        targets[small] = toe + (0.03 * s, -0.01, 0.0)
        targets[heel] = extra[f"{side}_heel"] + (0, -0.02, -0.005)
        for f in ("thumb", "index", "middle", "ring", "pinky"):
            targets[f"{short}{f}"] = extra[f"{side}_{f}_tip"]
    order = np.arange(len(verts))  # order[new] = old
    where = np.arange(len(verts))  # where[old] = new
    for name, new in SMPLX_VERTEX_IDS["smplx"].items():
        old = int(np.argmin(np.linalg.norm(verts - np.asarray(targets[name]), axis=1)))
        a, b = where[old], new
        order[a], order[b] = order[b], order[a]
        where[order[a]], where[order[b]] = a, b
    return order


def _front_head_faces(verts, faces, head_vertices) -> np.ndarray:
    """Indices of the faces of the head's front (the face), for the landmark arrays."""
    is_head = np.zeros(len(verts), bool)
    is_head[head_vertices] = True
    cent = verts[faces].mean(1)
    ok = is_head[faces].all(1) & (cent[:, 2] > 0.07) & (cent[:, 1] > 0.58) & (cent[:, 1] < 0.72)
    return np.flatnonzero(ok)
