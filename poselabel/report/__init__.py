"""``poselabel report``: one self-contained HTML page about a table directory.

``write_report(input_dir, out_file, sample=N)`` reads the persons and images tables
(``poselabel.report.data``), draws histograms (``figures``), renders the fitted bodies of
sampled accepted and rejected people over their images (``overlay``, torch) and writes
the page (``html``): counts by status and reason, mask IoU / Tz / f / FoV histograms,
overlays with their numbers, the thresholds. Images are inlined (base64 PNG/JPEG); the
page has no script and no external reference.
"""
from __future__ import annotations

import collections
import logging
import random
import time
from pathlib import Path
from typing import Any

from poselabel.config import load_config, manifest_quality
from poselabel.io import outputs
from poselabel.models.quality.evidence import with_peers
from poselabel.models.quality.facts import facts_from_row, is_fitted
from poselabel.models.quality.rule import explained_fit_score
from poselabel.report import data, figures, html, overlay

log = logging.getLogger(__name__)


def pick_samples(persons: list[dict[str, Any]], sample: int, seed: int = 0) -> tuple[list, list]:
    """Up to ``sample`` accepted and ``sample`` rejected rows; rejected ones taken reason by
    reason (first reason), round robin, so that each kind of failure shows."""
    rng = random.Random(seed)
    acc = [r for r in persons if r.get("accepted")]
    rng.shuffle(acc)
    groups: dict[str, list] = collections.defaultdict(list)
    for r in persons:
        if not r.get("accepted"):
            groups[(r.get("reject_reasons") or ["?"])[0]].append(r)
    for g in groups.values():
        rng.shuffle(g)
    rej: list = []
    order = sorted(groups, key=lambda k: -len(groups[k]))
    while len(rej) < sample and any(groups.values()):
        for k in order:
            if groups[k] and len(rej) < sample:
                rej.append(groups[k].pop())
    return acc[:sample], rej


def fit_scores(persons: list[dict[str, Any]], rows: list[dict[str, Any]], manifest: dict) -> dict[int, tuple]:
    """``(score, explanation)`` of each scorable fitted row of ``rows`` (by ``id``): its fit score
    (``quality.fit_score``) and the measures that cost it most (``FitScoreModel.explain``),
    judged with its image's other rows of ``persons`` as peers, under the run's thresholds
    (the manifest's; the defaults without one)."""
    try:
        quality = load_config(None, {"quality": manifest_quality(manifest)}).quality
    except (KeyError, TypeError):
        quality = load_config(None, {}).quality
    wanted = {(r["shard"], r["key"]) for r in rows}
    images: dict = collections.defaultdict(list)
    for r in persons:
        if (r["shard"], r["key"]) in wanted:
            images[(r["shard"], r["key"])].append(r)
    ids = {id(r) for r in rows}
    out = {}
    for group in images.values():
        for r, f in zip(group, with_peers([facts_from_row(r) for r in group])):
            scored = explained_fit_score(f, quality) if id(r) in ids and is_fitted(f) else None
            if scored is not None:
                out[id(r)] = scored
    return out


def write_report(input_dir: str, out_file: str, sample: int = 12, seed: int = 0,
                 title: str = "poselabel report") -> str:
    """Write the report of ``input_dir`` (local or gs://) to ``out_file``; returns its path."""

    tables = data.load_tables(input_dir)
    acc, rej = pick_samples(tables.persons, sample, seed)
    urls = {(r["shard"], r["key"]): r.get("url") for r in tables.images}
    wanted = [(urls.get((r["shard"], r["key"])), r["key"]) for r in acc + rej]
    images = data.fetch_images([w for w in wanted if w[0]])
    missing = sum(1 for w in wanted if w not in images)
    if missing:
        log.warning("%d of %d people drawn without their image: their shards could not be read from here",
                    missing, len(wanted))
    # the score as the table holds it (computed for tables written before the column), and why
    scores = fit_scores(tables.persons, acc + rej, tables.manifest)
    for r in acc + rej:
        if id(r) in scores and r.get("fit_score") is not None:
            scores[id(r)] = (r["fit_score"], scores[id(r)][1])
    body = None
    if any(overlay.has_fit(r) for r in acc + rej):
        from poselabel.models.body.model import BodyModel  # torch: only where there is a fit to draw

        body = BodyModel(data.body_model_path(tables.manifest))

    def cards(rows):
        out = []
        for r in rows:
            image = images.get((urls.get((r["shard"], r["key"])), r["key"]))
            pic = overlay.overlay(r, image, body)
            score, why = scores.get(id(r), (None, []))
            out.append({"row": r, "uri": figures.pil_uri(pic), "has_image": image is not None,
                        "fov": figures.fov_deg(r), "fit_score": score, "fit_loss_by": why})
        return out

    page = html.page(title=title, input_dir=input_dir, tables=tables, hist_uri=figures.histograms(tables.persons),
                     accepted_cards=cards(acc), rejected_cards=cards(rej),
                     generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    if "://" in out_file:
        outputs.write_atomic(out_file, page.encode("utf-8"))
    else:
        Path(out_file).parent.mkdir(parents=True, exist_ok=True)
        Path(out_file).write_text(page, encoding="utf-8")
    log.info("report: %d persons, %d + %d cards -> %s", len(tables.persons), len(acc), len(rej), out_file)
    return out_file
