"""People told apart: the class-level mask split by landmarks, and the YOLO -seg backend's plumbing."""
from __future__ import annotations

import numpy as np
import pytest

from poselabel.config import ConfigError, SegmentConfig
from poselabel.models.blazepose.split import split_by_landmarks
from poselabel.models.masks import mask_bbox, mask_iou
from poselabel.models.segment.backend import SegmentBackend
from poselabel.models.segment.instances import exclusive_instances
from poselabel.models.segment.segmenters import UltralyticsSegmenter, make_segmenter
from poselabel.records import ImageRecord, Person

H, W = 240, 320
# A standing person in its own units (x right, y down, 0 = between the feet, 1 = the body's height):
# MediaPipe landmark index -> (x, y).
STANDING = {0: (0.0, -0.93), 7: (-0.04, -0.92), 8: (0.04, -0.92), 11: (-0.1, -0.8), 12: (0.1, -0.8),
            13: (-0.13, -0.62), 14: (0.13, -0.62), 15: (-0.14, -0.45), 16: (0.14, -0.45),
            23: (-0.07, -0.5), 24: (0.07, -0.5), 25: (-0.08, -0.27), 26: (0.08, -0.27),
            27: (-0.08, -0.03), 28: (0.08, -0.03)}
BONES = ((0, 11), (0, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
         (23, 25), (25, 27), (24, 26), (26, 28), (11, 24), (12, 23))


def _person(x_feet: float, y_feet: float, height: float, reach: tuple[float, float] | None = None):
    """(33, 3) landmarks (invisible where not in STANDING) and the (H, W) bool body: capsules
    a twelfth of the height thick round the bones, a head disc. ``reach``: the right wrist there."""
    kp = np.zeros((33, 3), np.float32)
    for i, (x, y) in STANDING.items():
        kp[i] = (x_feet + x * height, y_feet + y * height, 0.99)
    if reach is not None:
        kp[16, :2] = reach
        kp[14, :2] = (kp[12, :2] + kp[16, :2]) / 2
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    body = np.hypot(xx - kp[0, 0], yy - kp[0, 1]) < 0.07 * height
    for a, b in BONES:
        p, q = kp[a, :2], kp[b, :2]
        d = q - p
        t = np.clip(((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) / max(float(d @ d), 1e-6), 0, 1)
        body |= np.hypot(xx - p[0] - t * d[0], yy - p[1] - t * d[1]) < height / 24
    return kp, body


def _touching_pair():
    """Two people side by side, the left one's right arm across the right one's chest, and
    each one's class-level mask (both bodies, as MediaPipe gives for a region holding both)."""
    kp_b, body_b = _person(200, 230, 200)
    kp_a, body_a = _person(120, 230, 190, reach=(205, 85))
    visible_a = body_a & ~body_b  # b in front: a's arm hidden where it crosses b
    truth = [visible_a, body_b]
    both = visible_a | body_b
    return truth, [both.copy(), both.copy()], [kp_a, kp_b]


def test_split_gives_touching_people_their_own_masks():
    truth, class_masks, kps = _touching_pair()
    assert (truth[0] & truth[1]).sum() == 0 and mask_iou(class_masks[0], truth[0]) < 0.7  # the problem
    boxes = np.stack([mask_bbox(m) for m in truth])
    split = split_by_landmarks(class_masks, kps, boxes)
    assert [m.shape for m in split] == [(H, W), (H, W)]
    assert (split[0] & split[1]).sum() == 0
    assert np.array_equal(split[0] | split[1], class_masks[0])  # the union is divided, nothing lost
    for got, want in zip(split, truth):
        assert mask_iou(got, want) > 0.9


def test_split_keeps_unsegmented_people_and_falls_back_to_boxes():
    truth, class_masks, kps = _touching_pair()
    boxes = np.stack([mask_bbox(m) for m in truth])
    # No landmarks: the box's centre line seeds each person; a person without a mask stays None.
    split = split_by_landmarks(class_masks + [None], [None, None, None],
                               np.concatenate([boxes, [[0, 0, 10, 10]]]))
    assert split[2] is None and (split[0] & split[1]).sum() == 0
    assert split[0].any() and split[1].any()
    assert split_by_landmarks([class_masks[0]], [kps[0]], boxes[:1])[0] is class_masks[0]  # one person: as it was


def test_an_unposed_person_takes_contested_pixels_only_from_its_likes():
    truth, class_masks, kps = _touching_pair()
    boxes = np.stack([mask_bbox(m) for m in truth])
    hidden = np.zeros_like(truth[0])
    hidden[200:230, 10:40] = True  # a mostly hidden person: a patch only its mask claims, no landmarks
    mine = class_masks[1] | hidden  # its mask took in both people in front of it
    split = split_by_landmarks([class_masks[0], mine], [kps[0], None],
                               np.stack([boxes[0], mask_bbox(mine)]))
    assert np.array_equal(split[1], hidden)  # its own pixels, none of the posed person's
    assert np.array_equal(split[0], class_masks[0])


def test_exclusive_instances_match_boxes_and_never_overlap():
    masks = np.zeros((3, 50, 80), bool)
    masks[0, 10:40, 5:30] = True  # person at the left
    masks[1, 10:40, 25:60] = True  # overlaps the first; less confident
    masks[2, 0:5, 70:80] = True  # matches no person
    scores = np.array([0.9, 0.8, 0.7])
    boxes = np.array([[26, 10, 60, 40], [5, 10, 30, 40], [0, 45, 5, 50]], np.float32)
    got = exclusive_instances(boxes, masks, scores, min_iou=0.3)
    assert got[0] is not None and got[1] is not None and got[2] is None
    assert np.array_equal(got[1], masks[0])  # the better instance keeps its pixels
    assert np.array_equal(got[0], masks[1] & ~masks[0])
    assert (got[0] & got[1]).sum() == 0
    assert exclusive_instances(boxes, np.zeros((0, 50, 80), bool), np.zeros(0), min_iou=0.3) == [None] * 3


@pytest.fixture(scope="module")
def box_filling_seg(tmp_path_factory):
    """A YOLO11n-seg built from its bundled yaml (random weights, no download), saved with
    ultralytics' own format (a torch pickle) and hand-set so that its output is known: every
    anchor says 'person' with confidence ~1 (class logits), and every instance's mask fills
    its box (constant prototypes and coefficients, ultralytics crops masks to their boxes)."""
    import torch
    from ultralytics import YOLO

    model = YOLO("yolo11n-seg.yaml")
    head = model.model.model[-1]
    with torch.no_grad():
        for branch in head.cv3:
            branch[-1].bias.fill_(-20.0)
            branch[-1].bias[0] = 20.0
        for branch in head.cv4:  # mask coefficients: all 1
            branch[-1].weight.zero_()
            branch[-1].bias.fill_(1.0)
        head.proto.cv3.conv.weight.zero_()  # prototypes: SiLU(5) everywhere
        head.proto.cv3.bn.weight.zero_()
        head.proto.cv3.bn.bias.fill_(5.0)
    path = tmp_path_factory.mktemp("yolo-seg") / "box-filling-seg.pt"
    model.save(str(path))
    return str(path)


def test_ultralytics_segmenter_gives_one_exclusive_mask_per_person(box_filling_seg):
    image = np.random.default_rng(0).integers(0, 255, (96, 160, 3), dtype=np.uint8)
    segmenter = make_segmenter(SegmentConfig(backend="ultralytics", yolo_weights=box_filling_seg,
                                             score_threshold=0.5))
    assert isinstance(segmenter, UltralyticsSegmenter)
    masks, inst_boxes, scores = segmenter.instances(image)
    assert masks.shape[1:] == (96, 160) and len(masks) == len(inst_boxes) == len(scores) >= 2
    for m, box in zip(masks, inst_boxes):  # each mask fills its box: masks and boxes share the image frame
        x0, y0, x1, y1 = np.clip(box, 0, [160, 96, 160, 96])
        if (x1 - x0) * (y1 - y0) >= 9:
            assert np.abs(mask_bbox(m) - [x0, y0, x1, y1]).max() <= 2
    order = np.argsort(-scores, kind="stable")
    results = segmenter.segment(image, {}, np.concatenate([inst_boxes[order], [[0, 0, 1, 1]]]))
    assert len(results) == len(masks) + 1 and results[-1] is None  # one result per box; a box of nothing: None
    mask, kp2d, kp3d = results[0]
    assert mask.shape == (96, 160) and mask.dtype == bool and kp2d is None and kp3d is None
    assert np.array_equal(mask, masks[order[0]])  # the most confident instance keeps all its pixels
    given = [r[0] for r in results if r is not None]
    assert len(given) >= 2 and (np.sum(given, axis=0) <= 1).all()  # no pixel in two people's masks
    assert not (np.logical_or.reduce(given) & ~np.logical_or.reduce(masks)).any()  # only the instances' pixels
    # The segment stage's backend gives the detected people those masks and keeps their landmarks.
    kp = np.ones((33, 3), np.float32)
    people = (Person(0, inst_boxes[order[0]], 0.9, keypoints_2d=kp), Person(1, np.array([0, 0, 1, 1], np.float32), 0.8))
    record = SegmentBackend(segmenter, reuse_detector_masks=False).apply(
        ImageRecord(key="k", shard="s", url="u", width=160, height=96, image=image, persons=people))
    assert np.array_equal(record.persons[0].mask, masks[order[0]]) and record.persons[0].keypoints_2d is kp
    assert record.persons[1].mask is None  # rejected later as no_mask, never dropped


def test_ultralytics_segmenter_needs_weights():
    with pytest.raises(ConfigError, match="segment.yolo_weights"):
        SegmentConfig(backend="ultralytics").validate()


def test_mediapipe_segmenter_is_built_only_for_a_person_without_the_detectors_mask(tmp_path):
    """Behind the MediaPipe detector every person found usually has its mask already: the
    segment stage then never builds MediaPipe's segmentation graph (a second or more of every
    worker's start-up); it builds it for the first person without one, and segments it."""
    from PIL import Image

    from poselabel.assets import photo_path
    from poselabel.config import load_config
    from poselabel.models.segment.backend import make_backend

    config = load_config(None, {"input": str(tmp_path / "x-*.tar"), "output": str(tmp_path / "out")})
    assert config.detect.backend == "mediapipe" and config.segment.backend == "mediapipe"
    backend = make_backend(config)
    assert backend._segmenter is None  # not built
    image = np.asarray(Image.open(photo_path("zidane.jpg")).convert("RGB"))
    given = np.zeros(image.shape[:2], bool)
    given[100:200, 100:200] = True
    with_mask = Person(0, np.array([100, 100, 200, 200], np.float32), 0.9, mask=given)
    record = ImageRecord(key="k", shard="s", url="u", width=image.shape[1], height=image.shape[0], image=image,
                         persons=(with_mask,))
    assert backend.apply(record).persons[0].mask is given and backend._segmenter is None
    man = Person(1, np.array([700, 40, 1150, 720], np.float32), 0.9)  # the man on the right, no mask yet
    out = backend.apply(ImageRecord(key="k", shard="s", url="u", width=image.shape[1], height=image.shape[0],
                                    image=image, persons=(with_mask, man)))
    assert backend._segmenter is not None  # built now
    assert out.persons[0].mask is given and out.persons[1].mask is not None and out.persons[1].mask.sum() > 10000
