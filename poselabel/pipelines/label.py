"""The main labelling pipeline: shards in, per-shard Parquet tables out.

```
read shards ─► decode ─► detect people ─► segment ─► estimate Tz ─► regress pose | Tz
  ─► solve camera ─► judge quality ─► rows ─► write tables + done marker (per shard)
```
Parallelism is over shards (a reshuffle spreads the shard paths over
workers); every stage after reading is fused with it, so images never cross a
shuffle and each shard is written as soon as it is labelled.
"""
from __future__ import annotations

import apache_beam as beam

from poselabel.config import RunConfig
from poselabel.io.shards import ReadOptions
from poselabel.transforms.decode import Decode
from poselabel.transforms.count_progress import CountProgress
from poselabel.transforms.detect_people import DetectPeople
from poselabel.transforms.estimate_tz import EstimateTz
from poselabel.transforms.judge_quality import JudgeQuality
from poselabel.transforms.read_shards import ReadShard
from poselabel.transforms.regress_pose import RegressPose
from poselabel.transforms.segment import Segment
from poselabel.transforms.solve_camera import SolveCamera
from poselabel.transforms.write_tables import ToRows, WriteShards


def label_records(samples, config: RunConfig):
    """Apply the per-sample stages to a PCollection of ``RawSample``; returns ``ImageRecord``s."""
    return (
        samples
        | "Decode" >> beam.ParDo(Decode(config))
        | "DetectPeople" >> beam.ParDo(DetectPeople(config))
        | "Segment" >> beam.ParDo(Segment(config))
        | "EstimateTz" >> beam.ParDo(EstimateTz(config))
        | "RegressPose" >> beam.ParDo(RegressPose(config))
        | "SolveCamera" >> beam.ParDo(SolveCamera(config))
        | "JudgeQuality" >> beam.ParDo(JudgeQuality(config))
    )


def build(pipeline: beam.Pipeline, shards: list[tuple[str, str]], config: RunConfig, run: dict):
    """Add the whole job for ``shards`` ``[(name, url)]`` to ``pipeline``; returns the markers.
    ``run``: what each done marker records of the run (``provenance.marker_fields``)."""
    samples = (
        pipeline
        | "Shards" >> beam.Create([path for _, path in shards])
        | "SpreadShards" >> beam.Reshuffle()
        | "ReadShards" >> beam.ParDo(ReadShard(ReadOptions.from_config(config)))
    )
    rows = label_records(samples, config) | "ToRows" >> beam.ParDo(ToRows(config.decode.meta_columns))
    if config.progress:  # live sample counts for the driver's progress (pipelines/progress.py)
        rows = rows | "CountProgress" >> beam.ParDo(CountProgress(config.output))
    return rows | "WriteTables" >> beam.ParDo(WriteShards(config.output, run, config.decode.meta_columns))
