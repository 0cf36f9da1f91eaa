"""Labels against ground truth (``poselabel eval``), no Beam.

- ``metrics.py``: BLADE's per-person errors (``E_f``, ``E_Tz``, ``E_1/Tz``, ``E_Txy``, PVE,
  MPJPE, PA-MPJPE, mIoU) of labels against true ones through one body model;
- ``match.py``: predicted people to ground-truth people by mask IoU (Hungarian);
- ``evaluate.py``: a labelling output's rows against ground-truth images: matching, errors,
  the good-label definition, the accept rule's precision and recall, the printed table.
"""

# the true masks people are matched on (``evaluate.gt_image``): the better IoU of the
# segmenter-like and body masks, one of them
MATCH_MASKS = ("best", "segmenter", "body")
