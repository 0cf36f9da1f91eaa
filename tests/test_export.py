"""``poselabel export``: labelled tables -> 4D-Humans training tars and SAM 3D Body tables.

The input is ``labelled_tables.build`` (real synthetic shards, real Parquet through the pipeline's
writers) with MediaPipe-style ``keypoints_2d`` added: 33 pixel centres of each person's mask, so
that a keypoint carried into the crop must land on the crop's mask.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import labelled_tables
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from poselabel.cli import main
from poselabel.io.shards import iter_samples
from poselabel.models.images.decode import decode_image
from poselabel.models.masks import decode_rle, mask_iou
from poselabel.tables import table_to_parquet_bytes

SIZE = 96  # crop pixels: small, and smaller than every box, so crops are resampled


@pytest.fixture(scope="session")
def labelled(tmp_path_factory):
    """A labelled table directory whose persons carry 33 keypoints on their masks."""
    src = labelled_tables.build(tmp_path_factory.getbasetemp() / "labelled")
    out = tmp_path_factory.getbasetemp() / "labelled-kp"
    if out.exists():
        return out
    shutil.copytree(src, out)
    rng = np.random.default_rng(0)
    for path in sorted((out / "persons").glob("*.parquet")):
        table = pq.read_table(path)
        kps = []
        for rle in table.column("mask_rle").to_pylist():
            ys, xs = np.nonzero(decode_rle(rle))
            pick = rng.choice(len(xs), 33)
            kps.append(np.stack([xs[pick] + 0.5, ys[pick] + 0.5, np.full(33, 0.9)], 1).ravel().tolist())
        column = pa.array(kps, table.schema.field("keypoints_2d").type)
        table = table.set_column(table.schema.get_field_index("keypoints_2d"), "keypoints_2d", column)
        path.write_bytes(table_to_parquet_bytes(table))
    return out


def source_rows(directory: Path, accepted_only: bool = True) -> dict:
    out = {}
    for path in sorted((directory / "persons").glob("*.parquet")):
        for r in pq.read_table(path).to_pylist():
            if r["accepted"] or not accepted_only:
                out[(r["shard"], r["key"], r["person_index"])] = r
    return out


def source_images(directory: Path) -> dict:
    urls = {r["url"] for p in (directory / "images").glob("*.parquet") for r in pq.read_table(p).to_pylist()}
    return {s.key: decode_image(s.members["jpg"] if "jpg" in s.members else s.members["png"], max_pixels=10**8)
            for url in sorted(urls) for s in iter_samples(url)}


def export(*argv: str) -> int:
    return main(["export", *map(str, argv)])


def sample_at(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Nearest pixel of ``image`` at image coordinates (outside: 0)."""
    h, w = image.shape[:2]
    ix, iy = np.floor(xs).astype(int), np.floor(ys).astype(int)
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    out = np.zeros(xs.shape + image.shape[2:], image.dtype)
    out[inside] = image[iy[inside], ix[inside]]
    return out


def test_4dhumans_shards_hold_one_crop_per_accepted_person_consistent_with_its_row(labelled, tmp_path):
    out = tmp_path / "hmr2"
    assert export("--input", labelled, "--output", out, "--format", "4dhumans", "--crop-size", SIZE,
                  "--shard-size", 1) == 0
    rows = source_rows(labelled)
    images = source_images(labelled)
    tars = sorted(out.glob("*.tar"))
    assert [t.name for t in tars] == [f"{i:06d}.tar" for i in range(len(rows))]  # one person a shard here
    # What a trainer writes: webdataset, a few lines (data.pyd is unpickled: this test wrote it).
    samples = list(wds.WebDataset([str(t) for t in tars], shardshuffle=False).decode("rgb8"))
    assert len(samples) == len(rows) >= 2
    seen = []
    for s in samples:
        data, labels, masks = s["data.pyd"][0], s["json"], s["detection.npz"]["masks"]
        row = rows[(labels["source"]["shard"], labels["source"]["key"], labels["source"]["person_index"])]
        seen.append((row["shard"], row["key"], row["person_index"]))
        assert s["__key__"] == f"{row['shard']}/{row['key']}_p{row['person_index']}"
        # Shapes, and the pickle and the json say the same.
        assert s["jpg"].shape == (SIZE, SIZE, 3) and masks.shape == (1, SIZE, SIZE) and masks.dtype == bool
        assert data["keypoints_2d"].shape == (44, 3) and data["keypoints_3d"].shape == (44, 4)
        assert data["body_pose"].shape == (72,) and data["betas"].shape == (10,)
        assert data["center"].shape == (2,) and data["scale"].shape == (2,) and data["cam_int"].shape == (3, 3)
        np.testing.assert_allclose(np.asarray(labels["keypoints_2d"]), data["keypoints_2d"])
        assert labels["extra_info"]["fitting_loss"] == data["extra_info"]["fitting_loss"].item()
        # SMPL-X parameters packed as HMR2's body_pose, trusted because accepted.
        np.testing.assert_allclose(data["body_pose"][:3], row["global_orient"], rtol=1e-6)
        np.testing.assert_allclose(data["body_pose"][3:66], row["body_pose"], rtol=1e-6)
        assert not data["body_pose"][66:].any()
        np.testing.assert_allclose(data["betas"], row["betas"], rtol=1e-6)
        assert data["has_body_pose"] == data["has_betas"] == 1.0 and data["accepted"]
        # The crop's window: square, around the box; the box in the crop is the row's box, scaled.
        x0, y0, x1, y1 = data["crop_box_xyxy"].astype(np.float64)
        side = x1 - x0
        assert side == pytest.approx(y1 - y0) and side == pytest.approx(1.5 * max(np.subtract(row["bbox_xyxy"][2:],
                                                                                             row["bbox_xyxy"][:2])))
        s_px = SIZE / side
        bx0, by0, bx1, by1 = row["bbox_xyxy"]
        np.testing.assert_allclose(data["bbox_xyxy"], [(bx0 - x0) * s_px, (by0 - y0) * s_px,
                                                       (bx1 - x0) * s_px, (by1 - y0) * s_px], atol=1e-3)
        np.testing.assert_allclose(data["center"], [SIZE / 2, SIZE / 2], atol=1e-3)
        np.testing.assert_allclose(data["scale"] * 200, [(bx1 - bx0) * s_px, (by1 - by0) * s_px], atol=1e-3)
        # The crop is the image's region at the window (nearest pixel at each crop pixel's centre),
        # and clearly not the region a tenth of the window further right.
        image = images[row["key"]]
        cu = (np.arange(SIZE) + 0.5) / s_px
        gx, gy = np.meshgrid(x0 + cu, y0 + cu)
        crop = s["jpg"].astype(np.float64)
        here = np.abs(crop - sample_at(image, gx, gy)).mean()
        shifted = np.abs(crop - sample_at(image, gx + side / 10, gy)).mean()
        assert here < 12 and shifted > 2 * here, (here, shifted)
        truth = sample_at(decode_rle(row["mask_rle"])[..., None], gx, gy)[..., 0]
        assert mask_iou(masks[0], truth) > 0.9
        # Keypoints (mask pixels in the image) land inside the crop, on the crop's mask.
        kp = np.asarray(labels["mediapipe_keypoints_2d"])
        inside = (kp[:, :2] >= 0).all(1) & (kp[:, :2] < SIZE).all(1)
        assert inside.all()
        on_mask = masks[0][kp[:, 1].astype(int), kp[:, 0].astype(int)]
        assert on_mask.mean() >= 0.85
        mp = np.asarray(row["keypoints_2d"]).reshape(33, 3)
        np.testing.assert_allclose(data["keypoints_2d"][4, :2], (mp[16, :2] - (x0, y0)) * s_px, atol=1e-3)  # R wrist
        np.testing.assert_allclose(data["keypoints_2d"][1, :2], ((mp[11, :2] + mp[12, :2]) / 2 - (x0, y0)) * s_px,
                                   atol=1e-3)  # neck: the shoulders' midpoint
        assert not data["keypoints_2d"][[20, 23], 2].any() and not data["keypoints_2d"][25:, 2].any()
        # The crop's K: the image's f and principal point, scaled and shifted; it projects the
        # pelvis where the image's K does, carried into the crop.
        f, cx, cy = row["focal_px"], row["cx"], row["cy"]
        np.testing.assert_allclose(data["cam_int"], [[s_px * f, 0, s_px * (cx - x0)], [0, s_px * f, s_px * (cy - y0)],
                                                     [0, 0, 1]], rtol=1e-5)
        t = np.asarray(row["transl"], np.float64)
        uv = np.array([f * t[0] / t[2] + cx, f * t[1] / t[2] + cy])
        p = data["cam_int"].astype(np.float64) @ t
        np.testing.assert_allclose(p[:2] / p[2], (uv - (x0, y0)) * s_px, atol=1e-2)
        # HMR2's loader reads its fit-loss filter this way.
        assert data["extra_info"]["fitting_loss"].item().get("reprojection_loss") is None
    assert seen == sorted(rows)
    record = json.loads((out / "export.json").read_text())
    assert record["persons"] == len(rows) and record["counts"]["accepted"] == len(rows)


def test_sam3d_table_has_one_row_per_accepted_person_with_k_from_focal_and_principal_point(labelled, tmp_path):
    out = tmp_path / "sam3d"
    assert export("--input", labelled, "--output", out, "--format", "sam3d", "--dataset", "synth") == 0
    rows = source_rows(labelled)
    table = pq.read_table(out / "000000.parquet")
    assert sorted(p.name for p in out.glob("*.parquet")) == ["000000.parquet"]
    got = table.to_pylist()
    assert len(got) == len(rows)
    for r in got:
        src = rows[(r["shard"], r["key"], r["person_id"])]
        assert r["dataset"] == "synth" and r["image"] == src["key"] and r["bbox_format"] == "xyxy"
        np.testing.assert_allclose(r["bbox"], src["bbox_xyxy"])
        x0, y0, x1, y1 = src["bbox_xyxy"]
        np.testing.assert_allclose(r["bbox_center"], [(x0 + x1) / 2, (y0 + y1) / 2])
        np.testing.assert_allclose(r["bbox_scale"], [x1 - x0, y1 - y0])
        assert r["bbox_score"] == pytest.approx(src["det_score"])
        np.testing.assert_allclose(r["cam_int"], [[src["focal_px"], 0, src["cx"]], [0, src["focal_px"], src["cy"]],
                                                  [0, 0, 1]], rtol=1e-6)
        assert np.asarray(r["keypoints_2d"]).shape == (33, 3)
        np.testing.assert_allclose(r["global_trans"], src["transl"])
        np.testing.assert_allclose(r["smplx_betas"], src["betas"])
        np.testing.assert_allclose(r["smplx_body_pose"], src["body_pose"])
        assert r["smplx_valid"] and r["accepted"] and r["reject_reasons"] == []
        rle = {"size": r["mask_size"], "counts": r["mask_cnts"]}
        assert (decode_rle(rle) == decode_rle(src["mask_rle"])).all()
        assert r["source_url"].endswith(f"{src['shard']}.tar")
    # An image's persons are consecutive, numbered 0 .. subject_cnt - 1.
    by_image: dict = {}
    for r in got:
        by_image.setdefault((r["shard"], r["image"]), []).append((r["subject_idx"], r["subject_cnt"]))
    for subjects in by_image.values():
        assert subjects == [(i, len(subjects)) for i in range(len(subjects))]


def test_all_keeps_rejected_persons_with_their_verdict_and_no_trusted_body(labelled, tmp_path):
    out = tmp_path / "all"
    assert export("--input", labelled, "--output", out, "--format", "4dhumans", "--all", "--shard-size", 3,
                  "--crop-size", 32) == 0
    rows = source_rows(labelled, accepted_only=False)
    samples = list(wds.WebDataset(sorted(str(p) for p in out.glob("*.tar")), shardshuffle=False).decode())
    assert len(rows) > len(source_rows(labelled)) and len(samples) == len(rows)
    assert len(list(out.glob("*.tar"))) == -(-len(rows) // 3)
    for s in samples:
        labels = s["json"]
        row = rows[tuple(labels["source"][k] for k in ("shard", "key", "person_index"))]
        assert labels["accepted"] == row["accepted"] and labels["reject_reasons"] == row["reject_reasons"]
        assert labels["has_body_pose"] == labels["has_betas"] == float(row["accepted"])
    assert export("--input", labelled, "--output", tmp_path / "all-sam3d", "--format", "sam3d", "--all") == 0
    table = pq.read_table(tmp_path / "all-sam3d" / "000000.parquet")
    assert table.num_rows == len(rows)
    assert table.column("smplx_valid").to_pylist() == table.column("accepted").to_pylist()


def test_rerun_gives_identical_files_and_a_killed_export_resumes(labelled, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["--input", labelled, "--format", "4dhumans", "--all", "--shard-size", 2, "--crop-size", 48]
    assert export(*common, "--output", a) == 0
    assert export(*common, "--output", b) == 0
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir()) and len(files) >= 4
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    # A kill after two shards: the later ones are missing; the rerun writes exactly those.
    tars = sorted(b.glob("*.tar"))
    for t in tars[2:]:
        t.unlink()
    (b / "export.json").unlink()
    assert export(*common, "--output", b) == 0
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    keys = [s["__key__"] for s in wds.WebDataset([str(t) for t in sorted(b.glob("*.tar"))], shardshuffle=False)]
    assert len(keys) == len(set(keys)) == len(source_rows(labelled, accepted_only=False))


def test_mistakes_get_one_line_and_create_nothing(labelled, tmp_path, capsys):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    none_accepted = tmp_path / "none-accepted"
    shutil.copytree(labelled, none_accepted)
    for path in (none_accepted / "persons").glob("*.parquet"):
        table = pq.read_table(path)
        column = pa.array([False] * table.num_rows)
        path.write_bytes(table_to_parquet_bytes(table.set_column(table.schema.get_field_index("accepted"),
                                                                 "accepted", column)))
    cases = [
        (["--input", tmp_path / "missing"], "no labelled tables"),
        (["--input", empty], "no labelled tables"),
        (["--input", none_accepted], "0 accepted (--all exports rejected ones too)"),
        (["--input", labelled, "--crop-size", 0], "--crop-size"),
        (["--input", labelled, "--context", 0.5], "--context"),
    ]
    for argv, words in cases:
        capsys.readouterr()
        assert export(*argv, "--output", out, "--format", "sam3d") == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1 and err.startswith("poselabel export: "), err
        assert not out.exists()
    assert export("--input", labelled, "--output", labelled, "--format", "sam3d") == 2
    # An output holding another export is not mixed with this one.
    assert export("--input", labelled, "--output", out, "--format", "sam3d") == 0
    capsys.readouterr()
    assert export("--input", labelled, "--output", out, "--format", "sam3d", "--all") == 2
    assert "holds another export" in capsys.readouterr().err
    assert export("--input", labelled, "--output", out, "--format", "sam3d", "--all", "--overwrite") == 0
    assert pq.read_table(out / "000000.parquet").num_rows == len(source_rows(labelled, accepted_only=False))


def test_crop_of_a_box_at_the_border_is_black_outside_the_image():
    from poselabel.export.crop import crop_image, window_for_box

    image = np.full((40, 60, 3), 200, np.uint8)
    window = window_for_box([0, 0, 20, 20], size=30, context=1.5)  # 30 px window from -5 to 25
    assert (window.x0, window.y0, window.side) == (-5.0, -5.0, 30.0)
    crop = crop_image(image, window)
    assert (crop[:4, :, :] == 0).all() and (crop[:, :4] == 0).all()  # the 5 px outside the image
    assert (crop[6:, 6:] == 200).all()
    assert crop.shape == (30, 30, 3)


@pytest.mark.slow
def test_export_reads_and_writes_gs(labelled, gcs_bucket, tmp_path):
    """Tables and source shards in a bucket (images' url rewritten to gs://), the export into it:
    the same crops as a local export of the same tables."""
    import tarfile

    from poselabel.io.outputs import read_bytes, write_atomic
    from poselabel.io.urls import to_path

    root = f"{gcs_bucket}/export-in"
    for path in sorted(labelled.rglob("*")):
        rel = path.relative_to(labelled).as_posix()
        if path.is_dir() or rel.startswith("_runs"):
            continue
        data = path.read_bytes()
        if rel.startswith("images/"):
            table = pq.read_table(path)
            urls = [f"{gcs_bucket}/export-src/{Path(u).name}" for u in table.column("url").to_pylist()]
            for local, remote in zip(table.column("url").to_pylist(), urls):
                write_atomic(remote, Path(to_path(local)).read_bytes())
            table = table.set_column(table.schema.get_field_index("url"), "url", pa.array(urls))
            data = table_to_parquet_bytes(table)
        write_atomic(f"{root}/{rel}", data)
    assert export("--input", root, "--output", f"{gcs_bucket}/export-out", "--format", "4dhumans",
                  "--crop-size", 64) == 0
    assert export("--input", labelled, "--output", tmp_path / "local", "--format", "4dhumans", "--crop-size", 64) == 0

    def crops(data: bytes) -> dict:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".jpg")}

    remote = crops(read_bytes(f"{gcs_bucket}/export-out/000000.tar"))
    assert remote == crops((tmp_path / "local" / "000000.tar").read_bytes())
    assert len(remote) == len(source_rows(labelled))
    record = json.loads(read_bytes(f"{gcs_bucket}/export-out/export.json"))
    assert record["persons"] == len(source_rows(labelled)) and record["shard_files"][0]["file"] == "000000.tar"
