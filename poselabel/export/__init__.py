"""Training-ready export of labelled tables (``poselabel export``): 4D-Humans tars, SAM 3D Body tables.

``source`` selects the persons and streams their images, ``crop`` cuts person crops, ``keypoints``
maps MediaPipe's landmarks to HMR2's layout, ``hmr2`` and ``sam3d`` are the two formats, ``writer``
plans, writes and records an export. Only numpy, PIL, pyarrow, pycocotools and Beam's file
systems are imported (no model). docs/export.md describes the fields.
"""
