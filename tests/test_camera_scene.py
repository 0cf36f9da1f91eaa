"""The people of an image solved together: depth-ordered occlusion (models/camera/scene.py)."""
from __future__ import annotations

import dataclasses

import torch
from test_camera_solver import SMALL, make_targets, person_mesh
from test_rasterize import ellipsoid_mesh

from poselabel.models.camera.config import CameraSolution
from poselabel.models.camera.occlusion import depth_ordered_occluders, occluder_masks
from poselabel.models.camera.scene import depth_gain, fitted_depths, solve_scene
from poselabel.models.camera.solver import solve_camera
from poselabel.models.render.rasterize import project_points, rasterize_faces

torch.set_num_threads(1)


def test_depth_order_follows_the_fitted_surfaces():
    """A person standing behind (by pelvis depth) whose arm reaches in front hides the other
    person there and only there; an untrusted fit hides no one; without depth maps the rule
    is the pelvis rule."""
    h, w = 10, 20
    a = torch.zeros(h, w, dtype=torch.bool)
    a[:, :8] = True  # the back person's body ...
    a[:, 14:] = True  # ... and its arm, reaching across the front person
    b = torch.zeros(h, w, dtype=torch.bool)
    b[:, 8:14] = True
    inf = float("inf")
    da = torch.full((h, w), inf)
    da[:, :8] = 4.0
    da[:, 8:] = 1.5  # the arm's surface, nearer than b's (hidden behind b's visible pixels)
    db = torch.full((h, w), inf)
    db[:, 6:18] = 2.0  # b's fitted surface: it would be visible at 14..17 but for the arm
    tz = [4.0, 2.0]
    pelvis = occluder_masks([a, b], tz, [0, 0], 0.1)
    assert not pelvis[1].any()  # the pelvis rule counts the arm as evidence against b
    occ = depth_ordered_occluders([a, b], [da, db], tz, [0, 0], 0.1)
    expected_b = torch.zeros(h, w, dtype=torch.bool)
    expected_b[:, 14:18] = True  # where the arm's surface is nearer than b's; a's body is not
    assert torch.equal(occ[1], expected_b)
    assert torch.equal(occ[0], pelvis[0])  # b stands in front of a by pelvis depth already
    untrusted = depth_ordered_occluders([a, b], [da, db], tz, [0, 0], 0.1, trusted=[False, True])
    assert not untrusted[1].any()
    other_image = depth_ordered_occluders([a, b], [da, db], tz, [0, 1], 0.1)
    assert not other_image[0].any() and not other_image[1].any()
    same = depth_ordered_occluders([a, b], [None, None], tz, [0, 0], 0.1)
    assert all(torch.equal(x, y) for x, y in zip(same, pelvis))


def _scene():
    """Two people of one topology (body + one arm): ``back`` at 3 m reaches its arm across
    ``front`` at 2.5 m, nearer than ``front``'s chest. Returns verts (2, V, 3) pelvis-centred,
    faces, focal, transl (2, 3), instance masks (2 x (H, W) bool, nearest surface wins)."""
    body, faces = person_mesh()
    arm_v, arm_f = ellipsoid_mesh((0.3, 0.05, 0.05), (0.0, 0.0, 0.0), 8, 12)
    arm_v = arm_v.float()
    faces = torch.cat([faces, arm_f + body.shape[0]])
    front = torch.cat([body, arm_v + torch.tensor([0.45, 0.3, 0.0])])  # arm hanging at its side
    back = torch.cat([body, arm_v + torch.tensor([-0.55, -0.2, -0.75])])  # arm across, 0.75 m forward
    verts = torch.stack([front, back])
    transl = torch.tensor([[0.0, 0.0, 2.5], [0.55, 0.0, 3.0]])
    h, w, focal = 120, 160, 220.0
    px = project_points(verts + transl[:, None], torch.full((2,), focal), torch.full((2,), w / 2),
                        torch.full((2,), h / 2))
    depth = rasterize_faces(px, faces, h, w)[1]
    nearest = depth.argmin(dim=0)
    covered = torch.isfinite(depth).any(dim=0)
    masks = [covered & (nearest == k) for k in range(2)]
    return verts, faces, focal, transl, masks


def test_an_arm_reaching_in_front_is_no_evidence_after_the_first_fit():
    verts, faces, focal, transl, masks = _scene()
    tz = transl[:, 2]
    one_pass = solve_scene(verts, faces, tz, masks, [0, 0], dataclasses.replace(SMALL, depth_order=False))
    two = solve_scene(verts, faces, tz, masks, [0, 0], SMALL)
    # The front person's true silhouette covers the back person's arm: with the pelvis rule
    # that arm is evidence of absence, so the true camera scores below 1 and the fit is
    # pulled off it; with the fitted depth order the arm is no evidence.
    assert one_pass.mask_iou[0] < 0.97
    assert two.mask_iou[0] > 0.99
    assert two.mask_iou[0] > one_pass.mask_iou[0] + 0.02
    assert abs(float(two.focal_px[0]) / focal - 1) < 0.02
    assert float((two.transl[0, :2] - transl[0, :2].double()).norm()) < 0.01
    assert two.iterations[0] > one_pass.iterations[0]  # solved twice
    # The back person was fitted well either way (the front person hides it in both rules).
    assert one_pass.mask_iou[1] > 0.97 and two.mask_iou[1] > 0.97
    assert abs(float(two.focal_px[1]) / focal - 1) < 0.02


def test_scene_solve_reports_the_iou_of_the_evidence_it_used():
    """The reported IoU is the IoU of the returned camera under the depth-ordered evidence
    (the image's shared camera off: the depths are the true ones)."""
    verts, faces, focal, transl, masks = _scene()
    tz = transl[:, 2]
    sol = solve_scene(verts, faces, tz, masks, [0, 0], dataclasses.replace(SMALL, share_camera=False))
    pp = torch.tensor([[80.0, 60.0]] * 2, dtype=torch.float64)
    depths = fitted_depths(verts, faces, sol.focal_px, sol.transl, pp, [m.shape for m in masks])
    ign = depth_ordered_occluders(masks, depths, tz.tolist(), [0, 0], SMALL.occluder_depth_margin)
    cfg = dataclasses.replace(SMALL, stages=tuple(dataclasses.replace(s, iters=0) for s in SMALL.stages),
                              retry_below_iou=0.0)
    # Zero descent steps from the returned camera: the warm start is kept and re-measured.
    check = solve_camera(verts[:1], faces, tz[:1], masks[:1], cfg, ignore=ign[:1],
                         start=(sol.focal_px[:1], sol.transl[:1]))
    assert float(check.mask_iou[0]) == float(sol.mask_iou[0])


def test_people_of_other_images_and_unsolved_people():
    """Persons of different images never interact; an unsolved person's pixels given as
    ``extra_ignore`` are no evidence; single-person images are solved once."""
    verts, faces, focal, transl, masks = _scene()
    tz = transl[:, 2]
    apart = solve_scene(verts, faces, tz, masks, ["img-a", "img-b"], SMALL)
    alone = solve_camera(verts, faces, tz, masks, SMALL)
    assert torch.equal(apart.focal_px, alone.focal_px) and torch.equal(apart.iterations, alone.iterations)
    hidden = solve_scene(verts[:1], faces, tz[:1], masks[:1], [0], SMALL, extra_ignore=[masks[1]])
    assert hidden.mask_iou[0] > 0.99  # the arm is no evidence: the true camera is found


def test_a_poor_fit_restarts_at_its_peers_focal_length():
    """One camera per image: a person whose fit failed (here: forced to 3x the focal length)
    is solved again at the focal length of its image's good fits and recovers; the good fit
    is untouched; with no good peer nothing changes."""
    from poselabel.models.camera.scene import peer_focal_pass

    verts, faces, focal, transl, masks = _scene()
    tz = transl[:, 2]
    ignore = occluder_masks(masks, tz.tolist(), [0, 0], SMALL.occluder_depth_margin)
    sol = solve_camera(verts, faces, tz, masks, SMALL, ignore=ignore)
    assert sol.mask_iou[1] > 0.95  # the back person's fit is good
    broken = dataclasses.replace(sol, focal_px=sol.focal_px.clone(), mask_iou=sol.mask_iou.clone())
    broken.focal_px[0], broken.mask_iou[0] = 3 * focal, 0.3
    fixed = peer_focal_pass(broken, verts, faces, tz, masks, [0, 0], SMALL, ignore)
    assert abs(float(fixed.focal_px[0]) / focal - 1) < 0.03
    # It recovers what its own solve reached (0.90: part of it is hidden by the other person).
    assert fixed.mask_iou[0] > sol.mask_iou[0] - 0.01 and fixed.iterations[0] > sol.iterations[0]
    assert float(fixed.focal_px[1]) == float(sol.focal_px[1]) and fixed.iterations[1] == sol.iterations[1]
    lonely = dataclasses.replace(broken, mask_iou=torch.tensor([0.3, 0.5], dtype=torch.float64))
    same = peer_focal_pass(lonely, verts, faces, tz, masks, [0, 0], SMALL, ignore)
    assert float(same.focal_px[0]) == float(broken.focal_px[0])


def test_focal_margin_tells_a_pinned_focal_length_from_a_free_one():
    """A whole silhouette loses IoU when f is fixed 15 % off; a torso filling the frame
    fits any nearby focal length (margin about 0)."""
    from test_camera_solver import make_targets

    from poselabel.models.camera.scene import focal_margin

    v, f = person_mesh()
    h, w = 120, 160
    focal = torch.tensor([220.0, 220.0])
    transl = torch.tensor([[0.0, 0.0, 2.5], [0.0, 0.22, 0.35]])  # whole body; torso filling the image
    masks = make_targets(torch.stack([v, v]), f, focal, transl, h, w)
    assert float(masks[1].float().mean()) > 0.99  # almost nothing of the outline is visible
    sol = solve_camera(torch.stack([v, v]), f, transl[:, 2], masks, SMALL)
    margin = focal_margin(torch.stack([v, v]), f, transl[:, 2], masks, sol, SMALL)
    assert margin[0] > 0.1
    assert abs(float(margin[1])) < 0.02
    none = focal_margin(torch.stack([v, v]), f, transl[:, 2], masks, sol, SMALL, wanted=[False, True])
    assert torch.isnan(none[0]) and float(none[1]) == float(margin[1])


def test_depth_gain_finds_a_wrong_depth_close_up_not_far_away():
    """A close person given the wrong Tz (x0.6, absorbed into f by the solve) explains its mask
    better at another depth; given its true Tz it does not. Far away depth hardly matters."""
    v, f = person_mesh()
    rot = torch.tensor([[1.0, 0, 0], [0, 0.94, -0.34], [0, 0.34, 0.94]])  # leaning 20 degrees towards the camera
    v = v @ rot.T
    focal = torch.tensor([220.0, 220.0])
    transl = torch.tensor([[0.05, 0.05, 0.9], [0.05, 0.05, 6.0]])
    h, w = 240, 200
    masks = make_targets(v[None], f, focal, transl, h, w)
    verts = v[None].repeat(4, 1, 1)
    masks4 = masks + masks
    tz = torch.cat([transl[:, 2], transl[:, 2] * 0.6])  # true, true, wrong, wrong
    sol = solve_camera(verts, f, tz, masks4, SMALL)
    assert sol.reject_reasons == [None] * 4
    gain = depth_gain(verts, f, masks4, sol, SMALL)
    assert gain[0] < 0.005, gain  # the true depth close up: no other depth does better
    assert gain[2] > 0.01 and gain[2] > gain[0] + 0.01, gain  # the wrong one: a better depth exists
    assert abs(float(gain[3])) < 0.02, gain  # 6 m: the silhouette barely depends on depth at a fixed size
    skipped = depth_gain(verts, f, masks4, sol, SMALL, wanted=[True, False, False, False])
    assert torch.isnan(skipped[1:]).all() and skipped[0] == gain[0]


def _two_apart(tz_error=(1.12, 0.92)):
    """Two people side by side in one 160 x 240 image (no overlap), focal 300 px, at 3 m and
    3.5 m; returns verts (2, V, 3), faces, true focal, true transl (2, 3), masks and the
    depths given to the solve: the true ones scaled by ``tz_error``."""
    body, faces = person_mesh()
    verts = torch.stack([body, body])
    transl = torch.tensor([[-0.6, 0.1, 3.0], [0.7, 0.0, 3.5]])
    h, w, focal = 160, 240, 300.0
    masks = make_targets(verts, faces, torch.full((2,), focal), transl, h, w)
    assert not (masks[0] & masks[1]).any()
    return verts, faces, focal, transl, masks, transl[:, 2] * torch.tensor(tz_error)


def test_one_camera_per_image_pools_the_depths_errors():
    """Each person's solve absorbs its own Tz's error into f; the image's shared camera (the
    median of the good fits' log focal lengths) averages the errors out: both people end at
    one focal length nearer the truth than either own solve, their depths rescaled nearer the
    true ones, their IoUs kept; the accept rule's evidence (``solo_focal_px``, ``solo_iou``)
    keeps each own solve. Off, or across images, each keeps its own."""
    from poselabel.models.camera.scene import share_camera, solve_scene_with_evidence

    verts, faces, focal, transl, masks, tz = _two_apart()
    alone = dataclasses.replace(SMALL, share_camera=False)
    own, ignore = solve_scene_with_evidence(verts, faces, tz, masks, [0, 0], alone)
    assert own.solo_focal_px is None
    e_own = (own.focal_px / focal - 1).abs()
    assert float(e_own.min()) > 0.04  # each f took its depth's error (x1.12, x0.92)
    shared = share_camera(own, verts, faces, masks, [0, 0], SMALL, ignore)
    assert float(shared.focal_px[0]) == float(shared.focal_px[1])
    assert abs(float(shared.focal_px[0]) / focal - 1) < 0.5 * float(e_own.min())
    e_tz_own = (own.transl[:, 2] / transl[:, 2].double() - 1).abs()
    e_tz = (shared.transl[:, 2] / transl[:, 2].double() - 1).abs()
    assert bool((e_tz < e_tz_own).all())
    assert bool((shared.mask_iou >= own.mask_iou - SMALL.share_max_loss).all())
    assert torch.equal(shared.solo_focal_px, own.focal_px) and torch.equal(shared.solo_iou, own.mask_iou)
    assert bool((shared.iterations > own.iterations).all())
    # the same through solve_scene, and nothing shared when off or across images
    assert torch.equal(solve_scene(verts, faces, tz, masks, [0, 0], SMALL).focal_px, shared.focal_px)
    assert torch.equal(solve_scene(verts, faces, tz, masks, [0, 0], alone).focal_px, own.focal_px)
    apart = share_camera(own, verts, faces, masks, ["a", "b"], SMALL, ignore)
    assert apart is own
    # a fit outside the band keeps its own camera; one voter is no vote
    narrow = share_camera(own, verts, faces, masks, [0, 0], dataclasses.replace(SMALL, share_focal_band=1.01), ignore)
    assert torch.equal(narrow.focal_px, own.focal_px)
    poor = dataclasses.replace(own, mask_iou=torch.tensor([0.99, 0.5], dtype=torch.float64))
    assert share_camera(poor, verts, faces, masks, [0, 0], SMALL, ignore) is poor


def test_the_median_voter_keeps_its_own_solve():
    """Three people: the image's focal length is the middle one's own, which is not solved again
    (its label and iterations are its solve's); the other two take it."""
    from poselabel.models.camera.scene import share_camera

    verts, faces, focal, transl, masks, tz = _two_apart()
    own = solve_camera(verts, faces, tz, masks, dataclasses.replace(SMALL, retry_below_iou=0.0))
    three = CameraSolution.cat([own, own.take([0])])
    three.focal_px[2] *= 0.95  # a third voter between the two (the same image: f / Tz kept)
    three.transl[2, 2] *= 0.95
    verts3, masks3 = torch.cat([verts, verts[:1]]), masks + masks[:1]
    shared = share_camera(three, verts3, faces, masks3, [0, 0, 0], SMALL, [None, None, None])
    assert torch.allclose(shared.focal_px, three.focal_px[2].expand(3), rtol=1e-6)  # (the solve's float32)
    assert float(shared.focal_px[2]) == float(three.focal_px[2])
    assert torch.equal(shared.transl[2], three.transl[2]) and shared.iterations[2] == three.iterations[2]
    assert torch.isnan(shared.solo_focal_px[2]) and bool(torch.isfinite(shared.solo_focal_px[:2]).all())
