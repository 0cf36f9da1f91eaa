#!/usr/bin/env python3
"""Label shards on a SLURM cluster: start Dask workers as SLURM jobs (one GPU each), then run the job.

    python infra/dask_slurm.py --jobs 8 --partition gpu --account ACCOUNT \\
        -- --input '/shared/shards/shard-{000000..009999}.tar' --output /shared/labels

Everything after ``--`` goes to ``poselabel run`` (which gets ``--runner dask
--dask-address`` of the cluster started here). Run it on a login node, from
the environment poselabel is installed in; the batch nodes must see the same
environment (``--python``, default this interpreter) and the input and output
paths (a shared file system or gs://). Each SLURM job runs ``--processes`` Dask
worker processes of one thread on one GPU (``--gres=gpu:1``); with more than
one process per GPU pass ``--share-models machine`` so that they load one copy
of each network. ``--dry-run`` prints the cluster settings, the batch script
(when dask-jobqueue is installed) and the command, and starts nothing.

Needs ``dask-jobqueue`` (``pip install dask-jobqueue``) besides poselabel.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" in argv:
        i = argv.index("--")
        argv, run_args = argv[:i], argv[i + 1:]
    else:
        run_args = []
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, required=True, help="SLURM jobs (GPUs) to start")
    p.add_argument("--processes", type=int, default=1, help="Dask worker processes per job (per GPU)")
    p.add_argument("--cores", type=int, default=8, help="CPU cores per job (decode, MediaPipe, solver threads)")
    p.add_argument("--memory", default="64GB", help="memory per job")
    p.add_argument("--walltime", default="12:00:00", help="SLURM time limit per job")
    p.add_argument("--partition", help="SLURM partition (queue)")
    p.add_argument("--account", help="SLURM account")
    p.add_argument("--gres", default="gpu:1", help="generic resources per job")
    p.add_argument("--interface", help="network interface of the scheduler and workers (e.g. ib0)")
    p.add_argument("--python", default=sys.executable, help="the interpreter on the batch nodes")
    p.add_argument("--prologue", action="append", default=[], metavar="LINE",
                   help="shell line run before the worker starts, e.g. 'module load cuda' (repeatable)")
    p.add_argument("--wait-timeout", type=float, default=1800, help="seconds to wait for the first worker")
    p.add_argument("--dry-run", action="store_true", help="print what would run; start nothing")
    args = p.parse_args(argv)
    if args.jobs < 1 or args.processes < 1 or args.cores < args.processes:
        p.error("--jobs and --processes must be >= 1, and --cores >= --processes")
    return args, run_args


def cluster_kwargs(args: argparse.Namespace) -> dict:
    """dask_jobqueue.SLURMCluster's arguments: one job = one GPU, ``processes`` one-thread workers."""
    # cores = processes gives one thread per worker process (poselabel parallelises over processes,
    # torch_threads each); job_cpu books the job's cores for their torch and MediaPipe threads.
    return dict(
        cores=args.processes, processes=args.processes, job_cpu=args.cores, memory=args.memory,
        walltime=args.walltime, queue=args.partition, account=args.account, python=args.python,
        job_extra_directives=[f"--gres={args.gres}"], job_script_prologue=list(args.prologue),
        interface=args.interface,
    )


def run_command(args: argparse.Namespace, address: str, run_args: list[str]) -> list[str]:
    return [args.python, "-m", "poselabel.cli", "run", "--runner", "dask", "--dask-address", address, *run_args]


def main(argv: list[str]) -> int:
    args, run_args = parse_args(argv)
    kwargs = cluster_kwargs(args)
    if args.dry_run:
        print("SLURMCluster(**" + json.dumps(kwargs, indent=2) + ")")
        print(f"cluster.scale(jobs={args.jobs})")
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError:
            print("# (dask-jobqueue not installed: no batch script shown)")
        else:
            with SLURMCluster(**kwargs) as cluster:
                print(cluster.job_script())
        print(shlex.join(run_command(args, "tcp://SCHEDULER:PORT", run_args)))
        return 0
    from dask.distributed import Client
    from dask_jobqueue import SLURMCluster

    with SLURMCluster(**kwargs) as cluster, Client(cluster) as client:
        cluster.scale(jobs=args.jobs)
        client.wait_for_workers(1, timeout=args.wait_timeout)  # the rest join as SLURM starts them
        cmd = run_command(args, cluster.scheduler_address, run_args)
        print(shlex.join(cmd), flush=True)
        return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
