"""The fit score: how likely a fit is good, from all the evidence of the accept rule at once (numpy only).

The evidence checks of the checks rule (``low_mask_iou``, ``keypoint_mismatch``,
``depth_inconsistent``, ``truncated``, ``focal_disagreement``) each hold one measure against
one threshold, and a fit passes only if it passes all of them: a box in feature space. A
good fit of a slightly eroded mask (IoU 0.75, but every keypoint in place and no better
depth) fails that box, and no single threshold can be moved to admit it without admitting
bad fits elsewhere (docs/quality.md). The fit score weighs the same measures together.

**The model** is additive and monotone: ``logit = bias + sum_j g_j(x_j)``, one step
function ``g_j`` per feature (:data:`FEATURES`), each non-decreasing or non-increasing where
the evidence has a direction (:data:`MONOTONE`: a higher mask IoU never lowers the score, a
larger keypoint error never raises it). ``score = sigmoid(logit)`` in ``(0, 1)``. It is
fitted by boosting decision stumps on the logistic loss (:func:`fit_stumps`) on the failure
benchmark's fits (``benchmarks/fit_score.py``), so the score estimates the share of good
fits (PVE and ``E_f`` bounds of docs/quality.md) among fits with the same evidence, on the
benchmark's mix. Missing keypoints have their own learnt value; without the
:data:`REQUIRED` measures there is no score (:func:`scorable`), and the accept rule falls
back to the checks (``quality.judge``). Every step is visible: :meth:`FitScoreModel.contributions` gives each feature's
share of one person's logit, and the curves are drawn in docs/figures/fit_score_curves.png.

Stored as JSON (``poselabel/models/quality/fit_score.json``, or any local / ``gs://`` path): never pickle.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from poselabel.io.files import read_file
from poselabel.models.quality.evidence import focal_votes, truncation
from poselabel.models.quality.facts import LEGACY_KEYPOINTS, finite

DEFAULT_MODEL = str(Path(__file__).with_name("fit_score.json"))
# fits of segmenter masks (their solve's own objective, ``camera.fit_iou``): clothes, hair and
# segmenter errors make their measures mean other things (benchmarks/fit_score.py on the
# clothed+segmenter world)
SEGMENTER_MODEL = str(Path(__file__).with_name("fit_score_segmenter.json"))

# Features, in model order; what each measures is in features().
FEATURES = ("mask_iou", "depth_gain", "depth_gain_ratio", "focal_margin", "focal_margin_ratio",
            "keypoint_error", "keypoint_count", "log_mask_area", "border_cut", "border_sides",
            "peers_agree", "peers_disagree", "fit_loss")
# +1: the score never falls as the feature grows; -1: never rises; 0: free
# (log_mask_area and the border measures: a prior the oracle-input benchmark cannot measure, where
# small and cut people fit as well as any; on real inputs more pixels and less truncation are
# better evidence. Unconstrained, the model had learnt +0.55 for masks under 1,800 px; the
# constraint moved leave-one-pair-out recall by +0.1 point, docs/quality.md)
MONOTONE = {"mask_iou": 1, "depth_gain": -1, "depth_gain_ratio": -1, "focal_margin": 1,
            "focal_margin_ratio": 1, "keypoint_error": -1, "keypoint_count": 0, "log_mask_area": 1,
            "border_cut": -1, "border_sides": -1, "peers_agree": 1, "peers_disagree": -1, "fit_loss": -1}
# what each feature is called where people read it (report cards)
LABELS = {"mask_iou": "mask IoU", "depth_gain": "depth probe", "depth_gain_ratio": "depth probe vs residual",
          "focal_margin": "focal margin", "focal_margin_ratio": "focal margin vs residual",
          "keypoint_error": "keypoint error", "keypoint_count": "keypoints seen", "log_mask_area": "mask size",
          "border_cut": "border cut", "border_sides": "border sides", "peers_agree": "peers agreeing on f",
          "peers_disagree": "peers disagreeing on f", "fit_loss": "fit loss"}
# measured for every fit the score was fitted on: without them there is no score
REQUIRED = ("mask_iou", "depth_gain", "focal_margin")
KEYPOINT_ERROR_CAP = 5.0  # box sides; a miss beyond it says nothing more
PINNED_MARGIN = 1.0  # focal margin of a mask that touches no image border: its whole outline pins f


def features(f, config) -> np.ndarray:
    """The (len(FEATURES),) float64 features of one person (``facts.PersonFacts``; peers set
    by ``evidence.with_peers``) under a ``QualityConfig``; nan where a measure is missing.

    - ``mask_iou``: hard IoU of the fitted silhouette with the mask, as the solve measured it
      (``PersonFacts.objective_iou``: with segmenter masks the clothed-mask objective's); ``fit_loss``: the solver's
      final ``1 - soft IoU``;
    - ``depth_gain``: ``camera.depth_gain`` (mask IoU gained at another depth);
      ``depth_gain_ratio``: the same over the residual ``max(1 - mask_iou, 0.001)``;
    - ``focal_margin``: ``camera.focal_margin`` (IoU lost with ``f`` fixed 15 % off),
      :data:`PINNED_MARGIN` for a mask touching no image border; ``focal_margin_ratio``: over
      the residual;
    - ``keypoint_error`` (box sides, capped at :data:`KEYPOINT_ERROR_CAP`) and
      ``keypoint_count``: the detector's keypoints against the fitted joints; missing (nan, 0)
      when ``Tz`` or the pose was fitted to those keypoints (``fitted_to_landmarks``);
    - ``log_mask_area``: ln of the mask's pixels; ``border_cut``, ``border_sides``:
      ``evidence.truncation``;
    - ``peers_agree`` / ``peers_disagree``: the image's other people whose focal length
      lies within / outside ``1 + max_focal_disagreement`` of this one's (the voters of
      ``evidence.focal_votes``; 0 and 0 without peers).
    """
    cam = f.camera
    nan = math.nan
    iou = float(f.objective_iou) if finite(f.objective_iou) else nan
    residual = max(1.0 - iou, 1e-3) if iou == iou else nan
    gain = float(cam.depth_gain) if finite(cam.depth_gain) else nan
    sides, cut = truncation(f, config)
    touches = any(f.border_runs) if f.border_runs is not None else sides > 0
    if finite(cam.focal_margin):
        margin = float(cam.focal_margin)
    else:
        margin = nan if touches else PINNED_MARGIN
    kp_error, kp_count = nan, 0
    if finite(cam.keypoint_error) and not f.fitted_to_landmarks:
        kp_error = min(float(cam.keypoint_error), KEYPOINT_ERROR_CAP)
        kp_count = LEGACY_KEYPOINTS if cam.keypoint_count is None else int(cam.keypoint_count)
    votes = focal_votes(f, config) or (0, 0)
    area = math.log(f.mask_area) if f.mask_area else nan
    fit_loss = float(f.fit_loss) if finite(f.fit_loss) else nan
    return np.array([iou, gain, gain / residual, margin, margin / residual, kp_error, kp_count, area,
                     cut, sides, votes[0], votes[1], fit_loss], dtype=np.float64)


def scorable(x: np.ndarray) -> bool:
    """Whether features ``x`` (F,) have every :data:`REQUIRED` measure: the mask IoU, the depth
    probe (``camera.depth_gain``) and, for a mask touching the image border, the focal margin.
    Every fit of the benchmark had them, so the model knows nothing of fits without them
    (its value for them would be a guess); such a person is judged by the checks rule."""
    return not any(math.isnan(x[FEATURES.index(n)]) for n in REQUIRED)


@dataclass(frozen=True)
class FitScoreModel:
    """``logit(x) = bias + sum_j values[j][bin_j(x_j)]``; ``bin_j(x)`` is the number of
    ``thresholds[j]`` below ``x`` (``x <= thresholds[j][k]`` falls in bin ``k``), a nan feature
    adds ``nan_values[j]``. ``thresholds[j]``: (K_j,) ascending; ``values[j]``: (K_j + 1,).
    ``reference`` (F,): each feature's mean contribution over the good training fits, what
    :meth:`explain` measures a person against (None: against each feature's best value)."""

    names: tuple[str, ...]
    bias: float
    thresholds: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]
    nan_values: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    reference: np.ndarray | None = None

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(N, F) logit contributions of (N, F) features (or (F,) of one person's (F,))."""
        x = np.asarray(x, dtype=np.float64)
        one = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] != len(self.names):
            raise ValueError(f"expected {len(self.names)} features ({', '.join(self.names)}), got {x.shape[1]}")
        out = np.empty_like(x)
        for j, (t, v) in enumerate(zip(self.thresholds, self.values)):
            col = x[:, j]
            missing = np.isnan(col)
            out[:, j] = np.where(missing, self.nan_values[j], v[np.searchsorted(t, np.where(missing, 0.0, col), "left")])
        return out[0] if one else out

    def shortfalls(self, x: np.ndarray) -> np.ndarray:
        """(N, F) logit each feature gives up against a typical good fit's (``reference``; its
        best value without one), or (F,) for one person: what a low score is made of, measure
        by measure. Negative where the person does better than the typical good fit."""
        ref = self.reference
        if ref is None:
            ref = np.array([max(v.max(initial=-np.inf), m) for v, m in zip(self.values, self.nan_values)])
        return ref - self.contributions(x)

    def explain(self, x: np.ndarray, top: int = 2, min_loss: float = 0.25) -> list[tuple[str, float]]:
        """The ``top`` features of one person's (F,) ``x`` that cost it most logit against a
        typical good fit, largest first, as ``(name, loss)``; only losses of at least ``min_loss``."""
        loss = self.shortfalls(np.asarray(x, dtype=np.float64).reshape(-1))
        order = np.argsort(-loss, kind="stable")[:top]
        return [(self.names[j], float(loss[j])) for j in order if loss[j] >= min_loss]

    def logit(self, x: np.ndarray) -> np.ndarray:
        return self.bias + self.contributions(x).sum(axis=-1)

    def score(self, x: np.ndarray) -> np.ndarray:
        """(N,) scores in (0, 1) of (N, F) features (a float array of shape () for (F,))."""
        return 1.0 / (1.0 + np.exp(-self.logit(x)))

    def to_json(self) -> str:
        reference = [None] * len(self.names) if self.reference is None else self.reference
        return json.dumps({"format": "poselabel-fit-score/1", "names": list(self.names), "bias": self.bias,
                           "features": [{"name": n, "monotone": MONOTONE.get(n, 0), "thresholds": t.tolist(),
                                         "values": v.tolist(), "nan_value": float(m),
                                         **({} if r is None else {"good_mean": float(r)})}
                                        for n, t, v, m, r in zip(self.names, self.thresholds, self.values,
                                                                 self.nan_values, reference)],
                           "meta": self.meta}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "FitScoreModel":
        d = json.loads(text)
        if d.get("format") != "poselabel-fit-score/1":
            raise ValueError(f"not a poselabel fit-score model (format {d.get('format')!r})")
        feats = d["features"]
        names = tuple(x["name"] for x in feats)
        if names != FEATURES:
            raise ValueError(f"fit-score model features {names} are not this version's {FEATURES}")
        thresholds = tuple(np.asarray(x["thresholds"], dtype=np.float64) for x in feats)
        values = tuple(np.asarray(x["values"], dtype=np.float64) for x in feats)
        for n, t, v in zip(names, thresholds, values):
            if v.shape != (t.size + 1,) or np.any(np.diff(t) <= 0):
                raise ValueError(f"fit-score feature {n}: needs ascending thresholds and one value more")
        reference = (np.asarray([x["good_mean"] for x in feats], dtype=np.float64)
                     if all("good_mean" in x for x in feats) else None)
        return cls(names, float(d["bias"]), thresholds, values,
                   np.asarray([x["nan_value"] for x in feats], dtype=np.float64), d.get("meta", {}), reference)


@functools.lru_cache(maxsize=4)
def load_model(path: str = "") -> FitScoreModel:
    """The model at a local or ``gs://`` path ("": the packaged :data:`DEFAULT_MODEL`), cached."""
    return FitScoreModel.from_json(read_file(path or DEFAULT_MODEL))


def segmenter_fit(f) -> bool:
    """Whether the fit was solved with a segmenter mask's own objective (``camera.fit_iou``)."""
    return finite(f.camera.fit_iou)


def model_path(f, config) -> str:
    """The model that scores fit ``f`` under a ``QualityConfig``: the segmenter-mask model for
    :func:`segmenter_fit` fits, else the exact-mask one ("" names none: the packaged ones)."""
    if segmenter_fit(f):
        return config.fit_score_model_segmenter or SEGMENTER_MODEL
    return config.fit_score_model or DEFAULT_MODEL


def min_score(f, config) -> float:
    """The threshold of :func:`model_path`'s model for fit ``f``."""
    return config.min_fit_score_segmenter if segmenter_fit(f) else config.min_fit_score


def model_entry(path: str = "", default: str = DEFAULT_MODEL) -> dict[str, str]:
    """``{"path", "sha256"}`` of the model file at ``path`` ("": the packaged ``default``), for run
    manifests: the thresholds alone do not say which model judged a run."""
    return {"path": path, "sha256": hashlib.sha256(read_file(path or default)).hexdigest()}


def model_entries(config) -> dict[str, dict[str, str]]:
    """:func:`model_entry` of both models a ``QualityConfig`` judges with, by the masks' kind."""
    return {"exact": model_entry(config.fit_score_model),
            "segmenter": model_entry(config.fit_score_model_segmenter, SEGMENTER_MODEL)}


def fit_stumps(x: np.ndarray, y: np.ndarray, names=FEATURES, rounds: int = 300, learning_rate: float = 0.05,
               l2: float = 1.0, max_bins: int = 32, min_leaf: int = 20, meta: dict | None = None) -> FitScoreModel:
    """Boost decision stumps on the logistic loss (Newton steps, as gradient-boosted trees of
    depth one), honouring :data:`MONOTONE`; the sum of stumps per feature is its step function.

    ``x``: (N, F) features (nan: missing), ``y``: (N,) bool (good). Each round takes the one
    stump (feature, threshold, side of the missing values) of largest loss reduction whose
    two leaves, each of at least ``min_leaf`` fits, keep the feature's direction. A feature
    missing in fewer than ``min_leaf`` fits gets its mean contribution as its missing value.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, nf = x.shape
    p0 = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
    bias = math.log(p0 / (1 - p0))
    thresholds, bins, missing = [], [], []
    for j in range(nf):
        col = x[:, j]
        miss = np.isnan(col)
        vals = np.unique(col[~miss])
        if vals.size > max_bins:
            vals = np.unique(np.quantile(col[~miss], np.linspace(0, 1, max_bins + 1)[1:-1]))
        t = vals[:-1] if vals.size and vals[-1] >= col[~miss].max() else vals  # a last edge splits nothing
        thresholds.append(t)
        bins.append(np.searchsorted(t, np.where(miss, 0.0, col), "left"))
        missing.append(miss)
    values = [np.zeros(t.size + 1) for t in thresholds]
    nan_values = np.zeros(nf)
    logit = np.full(n, bias)
    for _ in range(rounds):
        p = 1.0 / (1.0 + np.exp(-logit))
        g, h = p - y, np.maximum(p * (1 - p), 1e-6)
        best = None
        for j in range(nf):
            k = thresholds[j].size
            if k == 0:
                continue
            obs = ~missing[j]
            gb = np.bincount(bins[j][obs], g[obs], k + 1)
            hb = np.bincount(bins[j][obs], h[obs], k + 1)
            cb = np.bincount(bins[j][obs], None, k + 1)
            gm, hm, cm = g[~obs].sum(), h[~obs].sum(), float((~obs).sum())
            gl, hl, cl = np.cumsum(gb)[:-1], np.cumsum(hb)[:-1], np.cumsum(cb)[:-1]
            gr, hr, cr = gb.sum() - gl, hb.sum() - hl, cb.sum() - cl
            for nan_left in (True, False):
                GL, HL, CL = (gl + gm, hl + hm, cl + cm) if nan_left else (gl, hl, cl)
                GR, HR, CR = (gr, hr, cr) if nan_left else (gr + gm, hr + hm, cr + cm)
                wl, wr = -GL / (HL + l2), -GR / (HR + l2)
                gain = GL ** 2 / (HL + l2) + GR ** 2 / (HR + l2) - (GL + GR) ** 2 / (HL + HR + l2)
                ok = (CL >= min_leaf) & (CR >= min_leaf)
                mono = MONOTONE.get(names[j], 0)
                if mono:
                    ok &= mono * (wr - wl) >= 0
                if not ok.any():
                    continue
                i = int(np.argmax(np.where(ok, gain, -np.inf)))
                if best is None or gain[i] > best[0]:
                    best = (float(gain[i]), j, i, nan_left, float(wl[i]), float(wr[i]))
        if best is None or best[0] <= 1e-12:
            break
        _, j, i, nan_left, wl, wr = best
        wl, wr = learning_rate * wl, learning_rate * wr
        values[j][: i + 1] += wl
        values[j][i + 1:] += wr
        nan_values[j] += wl if nan_left else wr
        step = np.where(bins[j] <= i, wl, wr)
        logit += np.where(missing[j], wl if nan_left else wr, step)
    # A measure (almost) never missing in training has no learned value for "missing": it
    # gets its mean contribution over the training fits, what the model expects unseen.
    for j in range(nf):
        if missing[j].sum() < min_leaf:
            nan_values[j] = float(values[j][bins[j][~missing[j]]].mean()) if (~missing[j]).any() else 0.0
    # drop thresholds between equal values: the step functions as few steps as they have
    keep_t, keep_v = [], []
    for t, v in zip(thresholds, values):
        edge = np.flatnonzero(np.diff(v) != 0)
        keep_t.append(t[edge])
        keep_v.append(np.concatenate([v[:1], v[edge + 1]]) if v.size else v)
    model = FitScoreModel(tuple(names), bias, tuple(keep_t), tuple(keep_v), nan_values, dict(meta or {}))
    good = y > 0.5
    reference = model.contributions(x[good]).mean(axis=0) if good.any() else None
    return dataclasses.replace(model, reference=reference)
