"""infra/ launch paths: the scripts parse, lint, and the commands they would run are valid poselabel jobs.

Nothing here reaches a cluster: each launcher's ``--dry-run`` prints what it would
run, and that is parsed back with poselabel's own command line and configuration.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from poselabel.cli import build_parser
from poselabel.commands.run import config_from_args
from poselabel.pipelines.runners import pipeline_options

INFRA = Path(__file__).resolve().parents[1] / "infra"
SCRIPTS = sorted(INFRA.glob("*.sh"))
IMAGE = "europe-docker.pkg.dev/proj/poselabel/worker:1"


def _dry_run(script: str, *args: str, **env: str) -> str:
    proc = subprocess.run(["bash", str(INFRA / script), "--dry-run", *args], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **env}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _job_config(argv: list[str]):
    """The validated RunConfig of ``poselabel run ...`` as ``argv`` (from ``run``) gives it."""
    args = build_parser().parse_args(argv)
    return config_from_args(args, args.beam_args).validate()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_pass_shellcheck(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    proc = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_dataflow_launcher_runs_a_valid_gpu_job():
    out = _dry_run("launch_dataflow.sh", "gs://b/s-{000000..000009}.tar", "gs://b/labels", "--tz", "geometric",
                   PROJECT="proj", REGION="europe-west4", BUCKET="b", IMAGE=IMAGE)
    argv = shlex.split(out)
    assert argv[:2] == ["poselabel", "run"]
    config = _job_config(argv[1:])
    assert config.runner == "dataflow" and config.input == ("gs://b/s-{000000..000009}.tar",)
    assert config.models.share == "machine" and config.tz.backend == "geometric"
    assert f"--sdk_container_image={IMAGE}" in config.pipeline_args
    assert any("worker_accelerator=type:nvidia-l4;count:1" in a for a in config.pipeline_args)


def test_launchers_refuse_missing_settings():
    proc = subprocess.run(["bash", str(INFRA / "launch_flink.sh"), "--dry-run", "in", "out"],
                          capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert proc.returncode != 0 and "FLINK_MASTER" in proc.stderr
    proc = subprocess.run(["bash", str(INFRA / "launch_flink.sh"), "--dry-run", "in", "out"], capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"], "FLINK_MASTER": "jm:8081", "ENVIRONMENT": "k8s"})
    assert proc.returncode == 2 and "docker or external" in proc.stderr


@pytest.mark.parametrize("environment, env_type, env_config", [
    ("docker", "DOCKER", IMAGE), ("external", "EXTERNAL", "localhost:50000")])
def test_flink_launcher_gives_flink_the_worker_image(environment, env_type, env_config):
    from apache_beam.options.pipeline_options import FlinkRunnerOptions, PortableOptions, StandardOptions

    out = _dry_run("launch_flink.sh", "gs://b/s-*.tar", "gs://b/labels", "--share-models", "process",
                   FLINK_MASTER="flink-jobmanager:8081", IMAGE=IMAGE, ENVIRONMENT=environment, PARALLELISM="8")
    config = _job_config(shlex.split(out)[1:])
    assert config.models.share == "process"  # the caller's options win over the launcher's default
    with pipeline_options(config) as options:
        assert options.view_as(StandardOptions).runner == "FlinkRunner"
        flink = options.view_as(FlinkRunnerOptions)
        assert flink.flink_master == "flink-jobmanager:8081" and flink.parallelism == 8
        assert flink.flink_submit_uber_jar
        portable = options.view_as(PortableOptions)
        assert (portable.environment_type, portable.environment_config) == (env_type, env_config)


def test_kubernetes_launcher_renders_a_gpu_cluster_and_its_client_job():
    out = _dry_run("launch_dask_k8s.sh", "gs://b/s-{000000..000009}.tar", "gs://b/labels",
                   "--set", "detect.score_threshold=0.5", IMAGE=IMAGE, WORKERS="6", NAME="pl")
    manifests, _, commands = out.partition("\n# kubectl")
    cluster, job = list(yaml.safe_load_all(manifests))
    assert cluster["kind"] == "DaskCluster" and cluster["metadata"]["name"] == "pl"
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert worker["image"] == IMAGE and worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["command"][:2] == ["dask", "worker"]  # not the image's Beam entry point
    assert cluster["spec"]["scheduler"]["spec"]["containers"][0]["image"] == IMAGE
    assert "scale --replicas=6 daskworkergroup/pl-default" in commands
    client = job["spec"]["template"]["spec"]["containers"][0]
    assert client["image"] == IMAGE and client["command"][:2] == ["poselabel", "run"]
    config = _job_config(client["command"][1:] + client["args"])
    assert config.runner == "dask" and config.dask_address == "tcp://pl-scheduler:8786"
    assert config.input == ("gs://b/s-{000000..000009}.tar",) and config.detect.score_threshold == 0.5


def test_slurm_launcher_dry_run_prints_the_cluster_and_the_job():
    proc = subprocess.run([sys.executable, str(INFRA / "dask_slurm.py"), "--jobs", "4", "--processes", "2",
                           "--partition", "gpu", "--dry-run", "--", "--input", "/shared/s-*.tar",
                           "--output", "/shared/labels", "--share-models", "machine"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"--gres=gpu:1"' in proc.stdout and "cluster.scale(jobs=4)" in proc.stdout
    assert '"cores": 2' in proc.stdout and '"processes": 2' in proc.stdout  # one thread per process
    command = shlex.split(proc.stdout.strip().splitlines()[-1])
    assert command[1:3] == ["-m", "poselabel.cli"]
    config = _job_config(command[3:])
    assert config.runner == "dask" and config.dask_address == "tcp://SCHEDULER:PORT"
    assert config.models.share == "machine"
