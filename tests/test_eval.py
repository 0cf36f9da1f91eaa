"""``poselabel eval``: matching, metrics, and a labelled synthetic set judged end to end."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from poselabel.cli import main
from poselabel.config import load_config
from poselabel.evaluation.match import match_masks
from poselabel.evaluation.metrics import procrustes_align
from poselabel.io.shard_writer import write_shard
from poselabel.models.geometry import axis_angle_to_matrix
from poselabel.pipelines.job import run_job
from poselabel.synth.writer import write_synthetic_shards


def test_procrustes_undoes_a_similarity_transform():
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(2, 22, 3, generator=gen, dtype=torch.float64)
    rot = axis_angle_to_matrix(torch.tensor([[0.3, -1.2, 2.0], [2.5, 0.1, -0.4]], dtype=torch.float64))
    x = 1.7 * y @ rot.transpose(1, 2) + torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(procrustes_align(x, y), y)
    # a mirror image is not a rotation: it stays apart
    mirrored = y * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert (procrustes_align(mirrored, y) - y).norm(dim=-1).mean() > 0.1


def test_match_masks_pairs_by_iou_and_counts_the_rest():
    def box(x0, x1):
        m = np.zeros((20, 40), bool)
        m[2:18, x0:x1] = True
        return m

    gt = [box(0, 10), box(20, 30), box(31, 39)]
    pred = [box(21, 30), box(0, 11), box(12, 18)]  # person 1, person 0, nobody
    m = match_masks(pred, [gt], min_iou=0.3)
    assert [(p, g) for p, g, _ in m.pairs] == [(0, 1), (1, 0)]
    assert m.pairs[0][2] == pytest.approx(0.9) and m.false_positives == (2,) and m.missed == (2,)
    # two people whose segmenter-like masks merged: their bodies tell them apart
    merged = box(0, 30)
    m = match_masks([box(20, 30), box(0, 10)], [[merged, merged], [box(0, 10), box(20, 30)]])
    assert [(p, g, iou) for p, g, iou in m.pairs] == [(0, 1, 1.0), (1, 0, 1.0)] and m.missed == ()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Three synthetic images labelled by the pipeline with every stage an oracle."""
    root = tmp_path_factory.mktemp("eval")
    write_synthetic_shards(str(root / "gt"), num=3, seed=7, max_persons=2, shard_size=3)
    config = load_config(None, {
        "input": str(root / "gt"), "output": str(root / "pred"), "progress": False,
        "detect": {"backend": "oracle"}, "segment": {"backend": "oracle"}, "tz": {"backend": "oracle"},
        "pose": {"backend": "oracle"}, "camera": {"backend": "oracle"}})
    run_job(config)
    return root


def run_eval(root, pred, capsys) -> tuple[dict, str]:
    assert main(["eval", "--pred", str(pred), "--gt", str(root / "gt"), "--json", str(root / "r.json")]) == 0
    return json.loads((root / "r.json").read_text()), capsys.readouterr().out


def test_oracle_labels_score_perfectly_and_a_wrong_focal_length_shows(labelled, tmp_path, capsys):
    report, table = run_eval(labelled, labelled / "pred", capsys)
    c, m = report["counts"], report["metrics"]["all"]
    assert c["gt_images"] == 3 and c["gt_people"] >= 3
    assert c["matched"] == c["predicted"] == c["gt_people"] and c["missed"] == c["false_positives"] == 0
    for key in ("E_f_pct", "E_Tz_m", "E_Txy_m", "PVE_mm", "MPJPE_mm", "PA_MPJPE_mm", "PVE_cam_mm"):
        assert m[key]["n"] == c["matched"] and m[key]["mean"] < 1e-3, key
    assert m["mIoU_pct"]["mean"] > 99.5
    assert report["accept_rule"]["good"] == c["matched"]
    assert "PA-MPJPE mm" in table and "detection recall 100.0 %" in table

    # the same labels with every focal length 1.5 times too long
    wrong = tmp_path / "wrong"
    shutil.copytree(labelled / "pred", wrong)
    for path in (wrong / "persons").glob("*.parquet"):
        t = pq.read_table(path)
        t = t.set_column(t.schema.get_field_index("focal_px"), "focal_px", pc.multiply(t["focal_px"], 1.5))
        pq.write_table(t, path)
    report, _ = run_eval(labelled, wrong, capsys)
    m = report["metrics"]["all"]
    assert m["E_f_pct"]["mean"] == pytest.approx(50.0, abs=0.01) and m["PVE_mm"]["mean"] < 1e-3
    assert m["mIoU_pct"]["mean"] < 90
    a = report["accept_rule"]
    assert a["good"] == 0 and a["recall"] is None  # no good label: recall undefined (null)
    assert a["precision"] == 0.0 or a["accepted"] == 0


def test_eval_errors_are_one_line(labelled, tmp_path, capsys):
    write_shard(str(tmp_path / "plain-000000.tar"), [("a", {"txt": b"no ground truth"})])
    shutil.copy(labelled / "gt" / "synth-000000.tar", tmp_path / "renamed-000000.tar")  # not what --pred labelled
    cases = [(["--pred", str(tmp_path / "nothing"), "--gt", str(labelled / "gt")], "--pred"),
             (["--pred", str(labelled / "pred"), "--gt", str(tmp_path / "plain-000000.tar")], "--gt"),
             (["--pred", str(labelled / "pred"), "--gt", str(labelled / "pred")], "--gt"),
             (["--pred", str(labelled / "pred"), "--gt", str(tmp_path / "renamed-000000.tar")], "--gt"),
             (["--pred", str(labelled / "pred"), "--gt", str(tmp_path / "none-*.tar")], "--gt")]
    for argv, flag in cases:
        assert main(["eval", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"poselabel eval: {flag} ") and "\n" not in err, err


def test_evaluation_package_sits_below_beam_and_the_commands():
    from test_imports import ABOVE_MODELS, ROOT, all_imports, module_names

    modules = {m: p for m, p in module_names(ROOT, "poselabel").items() if m.startswith("poselabel.evaluation")}
    assert len(modules) >= 4
    for name, path in modules.items():
        bad = [i for i in all_imports(path) if i.split(".")[0] == "apache_beam" or i.startswith(ABOVE_MODELS)]
        assert not bad, f"{name} imports {bad}"
