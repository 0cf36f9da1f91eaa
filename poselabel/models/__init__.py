"""Pure computation (PyTorch, numpy; no Beam): one package per stage, plus shared parts.

Stages, in the order data flows: ``decode``, ``detect``, ``segment``, ``tz``, ``pose``,
``camera``, ``quality``. Shared parts: ``blazepose`` (MediaPipe's bundled models, used by
detect and segment), ``body`` (the SMPL-X body, the procedural stand-in, the landmark fit),
``render`` (rasterisers), ``nets`` (networks, crops, checkpoints), and the modules
``geometry`` (rotations), ``masks`` (RLE, boxes, IoU, NMS), ``ground_truth`` (synthetic
samples' answers). A stage package may import shared parts, never another stage; a shared
part never imports a stage (``tests/test_imports.py``).
"""
