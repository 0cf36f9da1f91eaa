"""Beam's DaskRunner, handed only the Dask options.

Beam's ``DaskRunner.run_pipeline`` (apache-beam 2.68.0, among others) builds its
``distributed.Client`` from ``options.view_as(DaskOptions).get_all_options(drop_default=True)``,
and that dictionary holds every non-default option of every options class, ``runner``
included. ``distributed.Client`` refuses keywords it does not use when it is given a
scheduler address (``ValueError: Unexpected keyword arguments: ['runner']``), so every
``--runner dask`` job failed before its first element. Later Beam releases ask for the
Dask options only (``current_only=True``); this runner does the same whatever the release.
It is named by ``--runner=poselabel.pipelines.dask_runner.DaskRunner`` (``runners.py``), so
``distributed`` is imported only by Dask jobs.
"""
from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.dask import dask_runner


def dask_option_names() -> frozenset[str]:
    """The attribute names of Beam's ``DaskOptions`` (``address``, ``timeout``, ...)."""
    parser = argparse.ArgumentParser(add_help=False)
    dask_runner.DaskOptions._add_argparse_args(parser)  # the hook every options class defines
    return frozenset(vars(parser.parse_args([])))


def dask_only(options: PipelineOptions) -> dask_runner.DaskOptions:
    """A copy of ``options`` that holds the non-default Dask options and nothing else."""
    names = dask_option_names()
    chosen = {k: v for k, v in options.get_all_options(drop_default=True).items() if k in names}
    return dask_runner.DaskOptions([], **chosen)  # [] : not sys.argv


class DaskRunner(dask_runner.DaskRunner):
    """``apache_beam``'s DaskRunner, given only the Dask options (the pipeline keeps them all)."""

    def run_pipeline(self, pipeline, options):
        return super().run_pipeline(pipeline, dask_only(options))
