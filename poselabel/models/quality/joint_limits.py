"""Joint limits of the 21 SMPL-X body joints, in degrees of axis-angle (numpy only)."""
from __future__ import annotations

import numpy as np

# Per body joint (SMPL-X joints 1..21 = body_pose slots 0..20): (max |θ| deg, hinge) where
# hinge = (axis, sign_left, max_off_axis_deg): the rotation's component about ``axis``
# times the side's sign must be >= -10° (no hyperextension) and the other two components
# stay within max_off_axis_deg. Right-side slots mirror the y and z signs. Signs follow
# poselabel/synth/poses.py: knee +x flexes, left elbow -y flexes.
HYPEREXTENSION_DEG = 10.0
JOINT_LIMITS_DEG: tuple[tuple[str, float, tuple[int, float, float] | None], ...] = (
    ("left_hip", 160, None), ("right_hip", 160, None), ("spine1", 70, None),
    ("left_knee", 165, (0, 1.0, 45)), ("right_knee", 165, (0, 1.0, 45)), ("spine2", 70, None),
    ("left_ankle", 90, None), ("right_ankle", 90, None), ("spine3", 70, None),
    ("left_foot", 60, None), ("right_foot", 60, None), ("neck", 90, None),
    ("left_collar", 60, None), ("right_collar", 60, None), ("head", 90, None),
    ("left_shoulder", 170, None), ("right_shoulder", 170, None),
    ("left_elbow", 165, (1, -1.0, 60)), ("right_elbow", 165, (1, -1.0, 60)),
    ("left_wrist", 120, None), ("right_wrist", 120, None),
)


def joint_limit_violations(body_pose: np.ndarray, slack_deg: float = 0.0) -> list[str]:
    """Names of the joints of a (63,) axis-angle body pose outside :data:`JOINT_LIMITS_DEG`."""
    pose = np.degrees(np.asarray(body_pose, dtype=np.float64).reshape(21, 3))
    bad = []
    for slot, (name, max_deg, hinge) in enumerate(JOINT_LIMITS_DEG):
        aa = pose[slot]
        if np.linalg.norm(aa) > max_deg + slack_deg:
            bad.append(name)
            continue
        if hinge is not None:
            axis, sign, off_deg = hinge
            side = -1.0 if name.startswith("right_") and axis != 0 else 1.0
            flex = aa[axis] * sign * side
            off = np.delete(aa, axis)
            if flex < -HYPEREXTENSION_DEG - slack_deg or np.abs(off).max() > off_deg + slack_deg:
                bad.append(name)
    return bad
