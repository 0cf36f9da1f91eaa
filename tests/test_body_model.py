"""The procedural SMPL-X-format body model, loaded through the real smplx library."""
from __future__ import annotations

import os

import numpy as np
import pytest
import smplx
import torch

from poselabel.models.body import procedural_parts as pp
from poselabel.models.body.model import BodyModel
from poselabel.models.body.procedural import default_body_model_path, write_procedural_body_model
from poselabel.models.geometry import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    return write_procedural_body_model(str(tmp_path_factory.mktemp("bm") / "SMPLX_NEUTRAL_PROCEDURAL.npz"))


@pytest.fixture(scope="module")
def body(model_path) -> BodyModel:
    return BodyModel(model_path)


def test_smplx_loads_the_file_unchanged(model_path):
    model = smplx.create(model_path, model_type="smplx", gender="neutral", use_pca=False, num_betas=10,
                         num_expression_coeffs=10, ext="npz")
    out = model(return_verts=True)
    data = np.load(model_path, allow_pickle=False)
    v = data["v_template"].shape[0]
    assert out.vertices.shape == (1, v, 3)
    assert out.joints.shape[1] >= 55
    assert model.num_betas == 10 and model.num_expression_coeffs == 10
    # Rows of the regressor sum to 1 and reproduce the designed joints.
    reg = data["J_regressor"].astype(np.float64)
    np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-5)
    joints, _ = pp.rest_joints()
    np.testing.assert_allclose(reg @ data["v_template"], joints, atol=1e-5)
    assert data["f"].max() < v and data["lmk_faces_idx"].max() < len(data["f"])
    np.testing.assert_allclose(data["weights"].sum(1), 1.0, atol=1e-5)


def test_faces_are_outward(model_path):
    data = np.load(model_path)
    tri = data["v_template"].astype(np.float64)[data["f"]]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    parts = data["vertex_part"][data["f"][:, 0]]
    for p in np.unique(parts):  # each part is closed: positive signed volume when outward
        t = tri[parts == p]
        assert np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() > 0
    assert np.isfinite(normals).all()


def test_pelvis_lands_at_transl_and_shapes(body):
    gen = torch.Generator().manual_seed(0)
    b = 5
    transl = torch.randn(b, 3, generator=gen) + torch.tensor([0.0, 0.0, 3.0])
    out = body(torch.randn(b, 10, generator=gen), torch.randn(b, 3, generator=gen),
               0.4 * torch.randn(b, 63, generator=gen), transl)
    assert out.vertices.shape == (b, body.num_vertices, 3)
    assert out.joints.shape == (b, 55, 3)
    assert body.faces.dtype == torch.long and body.faces.shape[1] == 3
    torch.testing.assert_close(out.joints[:, 0], transl, atol=1e-5, rtol=0)


def test_upright_orientation_maps_head_up_in_image(body):
    out = body(torch.zeros(1, 10), torch.tensor([[np.pi, 0.0, 0.0]]), torch.zeros(1, 63), torch.tensor([[0, 0, 3.0]]))
    head, foot = out.joints[0, 15], out.joints[0, 10]
    assert head[1] < foot[1]  # camera y points down: the head is higher in the image
    nose = out.vertices[0, 9120]  # smplx's SMPL-X nose vertex id, placed on the nose
    assert nose[2] < out.joints[0, 15, 2]  # facing the camera


def test_beta0_changes_height_monotonically(body):
    betas = torch.zeros(5, 10)
    betas[:, 0] = torch.tensor([-3.0, -1.5, 0.0, 1.5, 3.0])
    v = body(betas, torch.zeros(5, 3), torch.zeros(5, 63)).vertices
    height = v[:, :, 1].amax(1) - v[:, :, 1].amin(1)
    assert torch.all(height[1:] > height[:-1])
    assert 1.6 < float(height[2]) < 1.8
    assert 1.3 < float(height[0]) and float(height[-1]) < 2.2  # ±3 stays human


def test_shape_components_act_where_expected(body):
    zero = body(torch.zeros(1, 10), torch.zeros(1, 3), torch.zeros(1, 63))
    for k, joint_a, joint_b in ((2, 1, 7), (3, 16, 20)):  # leg length: hip-ankle; arm length: shoulder-wrist
        betas = torch.zeros(1, 10)
        betas[0, k] = 1.0
        out = body(betas, torch.zeros(1, 3), torch.zeros(1, 63))
        length = lambda o: float((o.joints[0, joint_a] - o.joints[0, joint_b]).norm())  # noqa: E731
        assert length(out) > length(zero) * 1.03


def test_skinning_bends_the_left_elbow_only_locally(body, model_path):
    pose = torch.zeros(1, 63)
    pose[0, 3 * (18 - 1) + 1] = -1.5  # left elbow (joint 18), bend forward
    rest = body(torch.zeros(1, 10), torch.zeros(1, 3), torch.zeros(1, 63)).vertices[0]
    bent = body(torch.zeros(1, 10), torch.zeros(1, 3), pose).vertices[0]
    moved = (bent - rest).norm(dim=1)
    weights = body.smplx.lbs_weights
    left_hand = weights[:, 20] > 0.9
    right_leg = (weights[:, [2, 5, 8, 11]].sum(1)) > 0.9
    assert left_hand.any() and right_leg.any()
    assert float(moved[left_hand].min()) > 0.1
    assert float(moved[right_leg].max()) < 1e-6


def test_no_vertex_count_is_assumed(tmp_path):
    path = write_procedural_body_model(str(tmp_path / "SMPLX_NEUTRAL_FINE.npz"), resolution=1.25)
    body = BodyModel(path)
    assert body.num_vertices > 15000
    out = body(torch.zeros(2, 10), torch.zeros(2, 3), torch.zeros(2, 63), torch.ones(2, 3))
    assert out.vertices.shape == (2, body.num_vertices, 3)
    torch.testing.assert_close(out.joints[:, 0], torch.ones(2, 3), atol=1e-5, rtol=0)


def test_default_path_is_cached_and_deterministic(tmp_path, monkeypatch, model_path):
    monkeypatch.setenv("POSELABEL_CACHE", str(tmp_path))
    first = default_body_model_path()
    mtime = os.path.getmtime(first)
    assert default_body_model_path() == first and os.path.getmtime(first) == mtime
    assert not list(tmp_path.glob("*.tmp"))
    a, b = np.load(first), np.load(model_path)  # same seed, written separately
    for key in ("v_template", "f", "J_regressor", "weights", "shapedirs", "hands_componentsl"):
        np.testing.assert_array_equal(a[key], b[key])


def test_rotation_helpers_round_trip():
    gen = torch.Generator().manual_seed(1)
    aa = torch.randn(200, 3, generator=gen)
    aa = aa / aa.norm(dim=1, keepdim=True) * torch.rand(200, 1, generator=gen) * 3.1
    mats = axis_angle_to_matrix(aa)
    torch.testing.assert_close(mats @ mats.transpose(1, 2), torch.eye(3).expand(200, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(matrix_to_axis_angle(mats), aa, atol=1e-4, rtol=0)
    torch.testing.assert_close(rotation_6d_to_matrix(matrix_to_rotation_6d(mats)), mats, atol=1e-5, rtol=0)
    torch.testing.assert_close(axis_angle_to_matrix(torch.zeros(1, 3)), torch.eye(3)[None])


def test_the_stages_of_a_process_share_one_body_model(tmp_path):
    """Tz, pose and camera read one body model per process (not three 85 MB copies); a file
    rewritten in place is loaded again."""
    from poselabel.config import load_config
    from poselabel.models.body.model import shared_body_model
    from poselabel.models.camera.backend import make_backend as camera_backend
    from poselabel.models.pose.backend import make_backend as pose_backend
    from poselabel.models.tz.backend import make_backend as tz_backend

    path = write_procedural_body_model(str(tmp_path / "SMPLX_NEUTRAL_SHARED.npz"))
    config = load_config(None, {"input": str(tmp_path / "x-*.tar"), "output": str(tmp_path / "out"),
                                "body_model": path})
    body = shared_body_model(path)
    assert tz_backend(config).body is body and pose_backend(config).body is body
    assert camera_backend(config).body is body
    assert shared_body_model(path, "cpu") is body
    write_procedural_body_model(path, resolution=1.25)  # rewritten: another mesh
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    again = shared_body_model(path)
    assert again is not body and again.num_vertices > body.num_vertices
