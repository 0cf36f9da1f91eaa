"""``poselabel run``: the main labelling job.

stdout carries only what a program reads (the summary JSON, with ``--json``); progress,
the human summary and errors go to stderr.
"""
from __future__ import annotations

import json
import sys

from poselabel.config import MODEL_SHARE_MODES, load_config, parse_dotted, split_patterns
from poselabel.io.files import check_credentials

EXIT_UNREAD = 3  # some input shards could not be read and are not done (docs/errors.md)

# CLI flag -> dotted config key. Flags override the config file.
FLAG_KEYS = {
    "input": "input", "output": "output", "runner": "runner", "workers": "workers",
    "overwrite": "overwrite", "retry_failed": "retry_failed", "body_model": "body_model",
    "dask_address": "dask_address", "flink_master": "flink_master", "log_every": "progress_interval",
    "detector": "detect.backend", "yolo_weights": "detect.yolo_weights",
    "segmenter": "segment.backend", "segment_weights": "segment.yolo_weights", "tz": "tz.backend", "tz_model": "tz.model",
    "pose": "pose.backend", "pose_model": "pose.model", "camera": "camera.backend",
    "rasterizer": "camera.rasterizer", "device": "camera.device", "max_pixels": "decode.max_pixels",
    "share_models": "models.share", "take_over": "take_over",
}


def add_run_options(parser, *, require_io: bool = True) -> None:
    if require_io:
        parser.add_argument("--input", required=True, action="append",
                            help="shards: a folder (its *.tar, *.tar.gz), a glob, a brace range {000..099} or "
                                 "list {a,b}, gs:// URLs; repeat --input for several (or separate by commas "
                                 "outside braces)")
        parser.add_argument("--output", required=True, help="output directory, local or gs://")
    parser.add_argument("--config", help="YAML or JSON configuration file (flags override it)")
    parser.add_argument("--runner", choices=["direct", "dask", "dataflow", "flink"])
    parser.add_argument("--workers", type=int, help="worker processes (direct: multi-processing when > 1)")
    parser.add_argument("--overwrite", action="store_true", default=None, help="redo shards that are already done")
    parser.add_argument("--retry-failed", action="store_true", default=None,
                        help="also redo done shards that could not be read (their marker has a read_error)")
    parser.add_argument("--take-over", action="store_true", default=None,
                        help="take the output's lease from a run that holds it (only when that run is dead; "
                             "a lease without a heartbeat for lease_stale_s, default 600 s, is taken by itself)")
    parser.add_argument("--dask-address", help="scheduler of an existing dask cluster (default: start a local one)")
    parser.add_argument("--flink-master", help="Flink REST endpoint HOST:PORT (with --runner flink)")
    parser.add_argument("--body-model", help="SMPL-X format body model file (default: the procedural one)")
    parser.add_argument("--detector", choices=["mediapipe", "ultralytics", "oracle"])
    parser.add_argument("--yolo-weights", help="YOLO checkpoint path (with --detector ultralytics)")
    parser.add_argument("--segmenter", choices=["mediapipe", "ultralytics", "oracle"])
    parser.add_argument("--segment-weights", help="YOLO instance-segmentation (-seg) checkpoint path (with --segmenter ultralytics)")
    parser.add_argument("--tz", choices=["none", "geometric", "network", "oracle"])
    parser.add_argument("--tz-model", help="Tz network checkpoint directory")
    parser.add_argument("--pose", choices=["none", "geometric", "network", "oracle"])
    parser.add_argument("--pose-model", help="pose network checkpoint directory")
    parser.add_argument("--camera", choices=["none", "solver", "oracle"])
    parser.add_argument("--rasterizer", choices=["auto", "torch", "nvdiffrast"])
    parser.add_argument("--device", help="torch device for the GPU stages (cpu, cuda)")
    parser.add_argument("--share-models", choices=MODEL_SHARE_MODES,
                        help="one network copy per DoFn (none), per worker process (process, the default) "
                             "or per machine (machine: served by one process to the others)")
    parser.add_argument("--max-pixels", type=int, help="images with more pixels become error rows")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any configuration key, e.g. --set detect.score_threshold=0.4 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    parser.add_argument("--log-every", type=float, metavar="SECONDS",
                        help="when stderr is not a terminal: a progress line every SECONDS (default 30)")


def config_from_args(args, extra_pipeline_args: list[str] | None = None):
    overrides = parse_dotted(args.set)
    for flag, dotted in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if flag == "input":  # repeated --input, each split at commas outside braces
            value = [p for v in value for p in split_patterns(v)]
        node = overrides
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    if args.no_progress:
        overrides["progress"] = False
    if extra_pipeline_args:
        overrides["pipeline_args"] = list(extra_pipeline_args)
    return load_config(args.config, overrides)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="label shards: tables of persons and images",
        description="Run the labelling job. Unknown --options after '--' go to Beam "
                    "(e.g. Dataflow's --project, --region, --temp_location; Flink's --environment_type, "
                    "--environment_config).")
    add_run_options(parser)
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON on stdout (nothing else goes to stdout)")
    parser.add_argument("beam_args", nargs="*", help="extra Beam pipeline options, after '--'")
    parser.set_defaults(func=main)


def human_summary(summary: dict, output: str) -> str:
    """The run's summary for a person (stderr), a few lines."""
    this = summary.get("this_run", {})
    out = output.rstrip("/")
    lines = [f"labelled {this.get('samples', 0)} samples in {this.get('wall_s', 0):.1f} s"
             + (f" ({this['images_per_s']:.2f} images/s)" if this.get("images_per_s") else "")
             + f"; the output holds {summary['shards']} shards, {summary['samples']} samples, "
             f"{summary['persons']} persons, {summary['accepted']} accepted",
             "status: " + (", ".join(f"{k} {v}" for k, v in summary["status"].items()) or "-")]
    if summary.get("reject_reasons"):
        lines.append("rejected for: " + ", ".join(f"{k} {v}" for k, v in summary["reject_reasons"].items()))
    if summary.get("members_skipped"):
        lines.append("tar members not read: " + ", ".join(f"{k} {v}" for k, v in summary["members_skipped"].items()))
    if summary.get("unread"):
        failed = set(summary.get("failed", ()))
        lines.append(f"NOT DONE, could not be read ({len(summary['unread'])} shards; a rerun reads them again"
                     + (f", {len(failed)} failed: --retry-failed" if failed else "") + "): "
                     + "; ".join(f"{n}{' (failed)' if n in failed else ''}: {e}"
                                 for n, e in list(summary["unread"].items())[:3]))
    if summary.get("ignored_files"):
        lines.append("ignored beside the shards (not read): "
                     + ", ".join(f"{n} {ext}" for ext, n in summary["ignored_files"].items()))
    lines += [f"tables:   {out}/persons/, {out}/images/", f"manifest: {out}/manifest.json",
              f"summary:  {out}/summary.json"]
    return "\n".join(lines)


def main(args) -> int:
    from poselabel.pipelines.job import run_job

    config = config_from_args(args, args.beam_args).validate()
    check_credentials([*config.input, config.output, config.body_model, config.tz.model, config.pose.model,
                       config.quality.fit_score_model])  # seconds, not Beam's minute and a half of retries
    summary = run_job(config)
    if args.json:
        print(json.dumps(summary, indent=2))
    print(human_summary(summary, config.output), file=sys.stderr)
    return EXIT_UNREAD if summary.get("unread") else 0
