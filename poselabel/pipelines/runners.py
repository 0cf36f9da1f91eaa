"""Beam runner options for ``direct``, ``dask``, ``dataflow`` and ``flink``.

- ``direct``: Beam's FnApiRunner, in memory for one worker, ``multi_processing``
  with ``--direct_num_workers`` for more; nothing is downloaded.
- ``dask``: Beam's DaskRunner (through ``dask_runner.py``, which hands it only the Dask
  options) on a ``dask.distributed`` cluster: a local one with ``workers`` processes unless
  ``dask_address`` names a scheduler.
- ``dataflow``: Google Cloud Dataflow; project, region, temp location, worker
  image and accelerator options come through ``pipeline_args`` (see infra/).
- ``flink``: Beam's FlinkRunner against the cluster at ``flink_master`` (it
  submits an uber jar through Flink's REST API: the launcher fetches Beam's
  Flink job-server jar from Maven Central unless ``--flink_job_server_jar``
  names a local copy); the SDK harness environment (the worker image) comes
  through ``pipeline_args`` (``--environment_type``, ``--environment_config``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets

from apache_beam.options.pipeline_options import PipelineOptions

from poselabel.config import RunConfig
from poselabel.transforms.shared_models import AUTHKEY_ENV

log = logging.getLogger(__name__)
# Beam's DaskRunner handed only the Dask options: Beam 2.68's hands distributed.Client every
# option, and Client refuses ``runner`` (pipelines/dask_runner.py).
DASK_RUNNER = "--runner=poselabel.pipelines.dask_runner.DaskRunner"


@contextlib.contextmanager
def pipeline_options(config: RunConfig):
    """Yield the ``PipelineOptions`` for ``config``, with any local cluster running meanwhile, and
    a fresh ``POSELABEL_SHARE_AUTHKEY`` in the environment of the worker processes started here
    (the secret of ``models.share=machine``'s servers, ``transforms/shared_models.py``)."""
    os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")  # YOLO .pt loads: weights_only=True (user_files.py)
    previous = os.environ.get(AUTHKEY_ENV)
    os.environ[AUTHKEY_ENV] = secrets.token_hex(32)
    try:
        with _options(config) as options:
            yield options
    finally:
        if previous is None:
            os.environ.pop(AUTHKEY_ENV, None)
        else:
            os.environ[AUTHKEY_ENV] = previous


@contextlib.contextmanager
def _options(config: RunConfig):
    args = list(config.pipeline_args)
    if config.runner == "direct":
        mode = "multi_processing" if config.workers > 1 else "in_memory"
        yield PipelineOptions(["--runner=DirectRunner", f"--direct_running_mode={mode}",
                               f"--direct_num_workers={config.workers}", *args])
    elif config.runner == "dask":
        if config.dask_address:
            yield PipelineOptions([DASK_RUNNER, f"--dask_client_address={config.dask_address}", *args])
        else:
            from distributed import LocalCluster

            with LocalCluster(n_workers=config.workers, threads_per_worker=1, processes=True,
                              dashboard_address=None, silence_logs=logging.WARNING) as cluster:
                logging.getLogger("distributed").setLevel(logging.WARNING)
                log.info("local dask cluster at %s with %d workers", cluster.scheduler_address, config.workers)
                yield PipelineOptions([DASK_RUNNER,
                                       f"--dask_client_address={cluster.scheduler_address}", *args])
    elif config.runner == "dataflow":
        yield PipelineOptions(["--runner=DataflowRunner", "--save_main_session", *args])
    elif config.runner == "flink":
        yield PipelineOptions(["--runner=FlinkRunner", f"--flink_master={config.flink_master}", *args])
    else:
        raise ValueError(f"unknown runner {config.runner!r}")
