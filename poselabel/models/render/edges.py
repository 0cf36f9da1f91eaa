"""Mesh topology for the silhouette rasterisers: undirected edges with their faces (numpy).

``MeshEdges`` is built once per faces tensor: the edge-sampled gradient
(``silhouette.edge_sample_gradient``, ``kernels.edge_gradient``) walks its contour edges,
and ``kernels.coverage_contour`` counts coverage from its edges' row crossings
(``render/rigid.py``).
"""
from __future__ import annotations

import numpy as np
import torch

from poselabel.models.kept import Kept

# Edge sampling (the silhouettes' backward pass): distance (pixels) of the visibility probe
# outside an edge sample, the longest piece of edge one sample represents (pixels), and the
# most samples on one edge.
PROBE_PX = 0.75
SAMPLE_SPACING_PX = 1.0
MAX_SAMPLES_PER_EDGE = 64


class MeshEdges:
    """Undirected edges of a triangle mesh with their (one or two) faces.

    Attributes (all long tensors on ``device``):
        v0, v1: (E,) edge end vertices.
        opp_a: (E,) the third vertex of the first face.
        opp_b: (E,) the third vertex of the second face, ``-1`` for boundary edges.
        dir_a: (E,) +1 where the first face runs ``v0 -> v1``, -1 where it runs ``v1 -> v0``.
    ``face_ab``: the two faces' indices, int64 arrays (E,) each (-1: no second face).
    """

    def __init__(self, faces: torch.Tensor):
        f = faces.detach().cpu().numpy().astype(np.int64)
        nf = f.shape[0]
        a = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
        b = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
        opp = np.concatenate([f[:, 2], f[:, 0], f[:, 1]])
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        key = lo * (int(f.max(initial=0)) + 1) + hi
        order = np.argsort(key, kind="stable")
        key, lo, hi, opp = key[order], lo[order], hi[order], opp[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.nonzero(first)[0]
        has_pair = np.zeros(len(starts), dtype=bool)
        nxt = starts + 1
        in_range = nxt < len(key)
        has_pair[in_range] = key[nxt[in_range]] == key[starts[in_range]]
        opp_b = np.full(len(starts), -1, dtype=np.int64)
        opp_b[has_pair] = opp[nxt[has_pair]]
        fid = np.tile(np.arange(nf, dtype=np.int64), 3)[order]
        face_b = np.full(len(starts), -1, dtype=np.int64)
        face_b[has_pair] = fid[nxt[has_pair]]
        self.face_ab = (np.ascontiguousarray(fid[starts]), face_b)  # (E,) int64 each: the faces (-1: none)
        dev = faces.device
        self.v0 = torch.as_tensor(lo[starts], device=dev)
        self.v1 = torch.as_tensor(hi[starts], device=dev)
        self.opp_a = torch.as_tensor(opp[starts], device=dev)
        self.opp_b = torch.as_tensor(opp_b, device=dev)
        # +1 where the first face runs v0 -> v1 (its winding), -1 where it runs v1 -> v0
        self.dir_a = torch.as_tensor(np.where(a[order][starts] == lo[starts], 1, -1).astype(np.int64), device=dev)
        self.num_faces = nf
        # Closed and consistently wound: every directed edge a->b appears once and so
        # does its reverse b->a (then back faces can be culled for coverage).
        directed = a * (int(f.max(initial=0)) + 1) + b
        reverse = b * (int(f.max(initial=0)) + 1) + a
        self.closed_oriented = bool(
            nf > 0 and len(np.unique(directed)) == len(directed)
            and np.array_equal(np.sort(directed), np.sort(reverse)))
        self.orientation: int | None = None  # sign of the signed volume, set on first use
        self._numpy = None

    @property
    def dir_a_np(self) -> np.ndarray:
        """``dir_a`` as an int64 array (for ``kernels.coverage_contour``)."""
        self.numpy()
        return self._numpy[4]

    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(v0, v1, opp_a, opp_b)`` as int64 arrays (for ``kernels.edge_gradient``), cached."""
        if self._numpy is None:
            self._numpy = tuple(np.ascontiguousarray(t.cpu().numpy()) for t in
                                (self.v0, self.v1, self.opp_a, self.opp_b, self.dir_a))
        return self._numpy[:4]


_EDGES = Kept()  # per faces tensor: its MeshEdges


def mesh_edges(faces: torch.Tensor) -> MeshEdges:
    """The ``MeshEdges`` of ``faces`` (F, 3), made once per faces tensor and kept while it lives
    unmodified: the silhouette rasteriser's descents and the hard renders share them (and the
    ``orientation`` set on them)."""
    return _EDGES(faces, lambda: MeshEdges(faces))
