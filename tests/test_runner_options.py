"""Runner choice: the PipelineOptions each runner gets, and the checks made before a job starts."""
from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import DebugOptions, FlinkRunnerOptions, PortableOptions, StandardOptions
from apache_beam.runners.dask.dask_runner import DaskOptions

from poselabel.config import ConfigError, load_config
from poselabel.pipelines.dask_runner import dask_only
from poselabel.pipelines.runners import pipeline_options

IMAGE = "registry.example/poselabel/worker:1"
FLINK_ENV = ("--environment_type=DOCKER", f"--environment_config={IMAGE}")


def _config(**overrides):
    return load_config(None, {"input": "in/*.tar", "output": "out", **overrides}).validate()


def test_flink_options_carry_master_and_worker_image():
    config = _config(runner="flink", flink_master="flink-jm:8081", pipeline_args=[*FLINK_ENV, "--parallelism=4"])
    with pipeline_options(config) as options:
        assert options.view_as(StandardOptions).runner == "FlinkRunner"
        flink = options.view_as(FlinkRunnerOptions)
        assert flink.flink_master == "flink-jm:8081" and flink.parallelism == 4
        portable = options.view_as(PortableOptions)
        assert portable.environment_type == "DOCKER" and portable.environment_config == IMAGE


def test_dask_client_gets_only_the_dask_options():
    # Beam 2.68's DaskRunner passes these to distributed.Client, which refuses any other
    # keyword once it has an address ("Unexpected keyword arguments: ['runner']").
    config = _config(runner="dask", dask_address="tcp://sched:8786",
                     pipeline_args=["--dask_npartitions=3", "--experiments=x"])
    with pipeline_options(config) as options:
        assert options.view_as(StandardOptions).runner == "poselabel.pipelines.dask_runner.DaskRunner"
        assert options.view_as(DebugOptions).experiments == ["x"]  # the pipeline keeps them all
        client_kwargs = dask_only(options).view_as(DaskOptions).get_all_options(drop_default=True)
    assert client_kwargs == {"address": "tcp://sched:8786", "npartitions": 3}


@pytest.mark.parametrize("overrides, match", [
    ({"runner": "flink", "pipeline_args": list(FLINK_ENV)}, "needs flink_master"),
    ({"runner": "flink", "flink_master": "jm:8081"}, "needs the SDK harness environment"),
    ({"runner": "spark"}, "runner must be one of direct, dask, dataflow, flink"),
])
def test_flink_needs_a_master_and_an_environment(overrides, match):
    with pytest.raises(ConfigError, match=match):
        _config(**overrides)


def test_external_worker_pool_environment_is_accepted():
    config = _config(runner="flink", flink_master="[local]",
                     pipeline_args=["--environment_type=EXTERNAL", "--environment_config=localhost:50000"])
    with pipeline_options(config) as options:
        assert options.view_as(PortableOptions).environment_type == "EXTERNAL"


def test_cli_flags_reach_the_flink_config():
    from poselabel.cli import build_parser
    from poselabel.commands.run import config_from_args

    args = build_parser().parse_args(["run", "--input", "a.tar", "--output", "o", "--runner", "flink",
                                      "--flink-master", "jm:8081", "--share-models", "machine", "--", *FLINK_ENV])
    config = config_from_args(args, args.beam_args).validate()
    assert (config.runner, config.flink_master, config.models.share) == ("flink", "jm:8081", "machine")
    assert config.pipeline_args == FLINK_ENV and config.to_dict()["models"] == {"share": "machine"}
