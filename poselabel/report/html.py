"""The report page: one self-contained HTML file (inline CSS, inline images, no script)."""
from __future__ import annotations

import collections
import html
from typing import Any

from poselabel.models.quality.facts import row_diagnostics
from poselabel.models.quality.fit_score import LABELS

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1240px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.muted{color:#777;font-size:12px} table{border-collapse:collapse;font-size:13px}
td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eee} th{background:#f6f6f6}
.bar{display:inline-block;height:10px;background:#d1495b;vertical-align:middle}
.bar.ok{background:#2a9d55} .row{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
.cards{display:flex;flex-wrap:wrap;gap:12px} .card{width:270px;border:1px solid #ddd;border-radius:6px;padding:6px;font-size:12px}
.card img{display:block;margin:0 auto 4px;max-width:260px} .card.rej{border-color:#d1495b} .card.acc{border-color:#2a9d55}
.reason{display:inline-block;background:#fde2e4;color:#8a1c2b;border-radius:3px;padding:0 4px;margin:1px}
.legend span{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 4px 0 12px}
"""


def esc(x: Any) -> str:
    return html.escape(str(x))


def counts_table(counter: dict[str, int], total: int, ok_key: str | None = None) -> str:
    rows = []
    for name, n in sorted(counter.items(), key=lambda kv: -kv[1]):
        width = int(200 * n / max(total, 1))
        cls = "bar ok" if name == ok_key else "bar"
        rows.append(f"<tr><td>{esc(name)}</td><td>{n}</td><td>{100 * n / max(total, 1):.1f} %</td>"
                    f"<td><span class='{cls}' style='width:{width}px'></span></td></tr>")
    return "<table><tr><th>name</th><th>count</th><th>share</th><th></th></tr>" + "".join(rows) + "</table>"


def fmt(x: Any, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def card(c: dict[str, Any]) -> str:
    r = c["row"]
    reasons = "".join(f"<span class='reason'>{esc(x)}</span>" for x in r.get("reject_reasons") or [])
    tz = r["transl"][2] if r.get("transl") else r.get("tz")
    cls = "acc" if r.get("accepted") else "rej"
    verdict = "accepted" if r.get("accepted") else "rejected"
    note = "" if c["has_image"] else "<div class='muted'>image not available: mask only</div>"
    diag = row_diagnostics(r)
    kp, n_kp = diag.get("keypoint_error"), diag.get("keypoint_count")
    kp = "" if kp is None else f" · kp {fmt(kp, '.3f')}" + ("" if n_kp is None else f" on {int(n_kp)}")
    solo = diag.get("solo_focal_px")  # the image's shared camera replaced the person's own
    solo = "" if solo is None else f" (image's; own {fmt(solo, '.0f')})"
    score = "" if c.get("fit_score") is None else f"fit score {c['fit_score']:.2f} · "
    if score and not r.get("accepted") and c.get("fit_loss_by"):  # what the score lost most on
        lost = ", ".join(f"{esc(LABELS.get(n, n))} −{v:.1f}" for n, v in c["fit_loss_by"])
        score = f"fit score {c['fit_score']:.2f} (lost most on {lost})<br>"
    return (f"<div class='card {cls}'><img src='{c['uri']}' alt='{esc(r['key'])}'>"
            f"<b>{verdict}</b> {esc(r['shard'])}/{esc(r['key'])} #{r['person_index']}<br>"
            f"Tz {fmt(tz, '.2f')} m · f {fmt(r.get('focal_px'), '.0f')} px{solo} · FoV {fmt(c['fov'], '.0f')}°<br>"
            f"IoU {fmt(r.get('mask_iou'), '.3f')} · det {fmt(r.get('det_score'), '.2f')} · "
            f"loss {fmt(r.get('fit_loss'), '.3f')}{kp}<br>{score}{reasons}{note}</div>")


def runs_line(manifest: dict) -> str:
    """Which runs made the tables: each run id with its shard count and config hash (manifest's
    ``runs``), or the one ``run_id`` of manifests written before ``runs`` existed."""
    runs = manifest.get("runs") or {}
    if not runs:
        return f"run {esc(manifest.get('run_id') or manifest.get('command') or '?')}"
    parts = []
    for run_id, r in sorted(runs.items()):
        shards = r.get("shards")
        n = f"{len(shards)} shards" if isinstance(shards, list) else ""
        config = f"config {esc(r['config_sha256'][:12])}" if r.get("config_sha256") else ""
        parts.append(f"{esc(run_id)}" + (f" ({', '.join(x for x in (n, config) if x)})" if n or config else ""))
    return ("made by run " if len(parts) == 1 else f"made by {len(parts)} runs: ") + "; ".join(parts)


def page(*, title: str, input_dir: str, tables, hist_uri: str, accepted_cards: list, rejected_cards: list,
         generated: str) -> str:
    persons, images, manifest = tables.persons, tables.images, tables.manifest
    status = collections.Counter(r["status"] for r in images)
    reasons = collections.Counter(x for r in persons for x in r.get("reject_reasons") or [])
    n_acc = sum(1 for r in persons if r.get("accepted"))
    verdict = {"accepted": n_acc, "rejected": len(persons) - n_acc}
    quality = (manifest.get("config") or {}).get("quality") or {}
    qrows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in sorted(quality.items()))
    errors = collections.Counter((r.get("error") or "").split(":")[0] for r in images if r["status"] == "error")
    cards = accepted_cards + rejected_cards
    missing = sum(1 for c in cards if not c.get("has_image"))
    missing_note = (f"<p class='muted'><b>{missing} of {len(cards)} people are drawn without their image</b>: "
                    "their shard could not be read (moved, or its url in the images table is not reachable "
                    "from here).</p>") if missing else ""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1><div class='muted'>{esc(input_dir)} · {len(tables.shards)} shards · "
        f"{runs_line(manifest)} · generated {esc(generated)}</div>",
        "<h2 id='counts'>Counts</h2><div class='row'>",
        f"<div><b>images by status</b> ({len(images)})" + counts_table(dict(status), len(images), "ok") + "</div>",
        f"<div><b>persons</b> ({len(persons)})" + counts_table(verdict, len(persons), "accepted") + "</div>",
        "<div><b>reject reasons</b> (a person can have several)" + counts_table(dict(reasons), len(persons)) + "</div>",
        ("<div><b>image errors by stage</b>" + counts_table(dict(errors), len(images)) + "</div>") if errors else "",
        "</div>",
        "<h2 id='histograms'>Distributions</h2>",
        f"<img src='{hist_uri}' alt='histograms of mask IoU, Tz, f and field of view'>",
        "<h2 id='accepted'>Accepted people (sample)</h2>", missing_note,
        "<div class='legend muted'>outline:<span style='background:#28dc5a'></span>segmentation mask"
        "<span style='background:#ff8c00'></span>fitted body (shaded)<span style='background:#fff;border:1px solid #999'>"
        "</span>detection box</div>",
        "<div class='cards'>" + ("".join(card(c) for c in accepted_cards) or "<i>none</i>") + "</div>",
        "<h2 id='rejected'>Rejected people (sample, one reason after another)</h2>",
        "<div class='cards'>" + ("".join(card(c) for c in rejected_cards) or "<i>none</i>") + "</div>",
        "<h2 id='thresholds'>Thresholds (QualityConfig)</h2>",
        ("<table>" + qrows + "</table>") if qrows else "<i>no manifest</i>",
        "<p class='muted'>Pixels are read back from the input shards (images table: url = the shard's absolute URL, key). "
        "Checks and thresholds: docs/quality.md.</p></body></html>",
    ]
    return "\n".join(parts)
