"""How a stage's factory asks for a network that may be shared (the interface; the sharing
itself is Beam's business: ``transforms/shared_models.py``).

A ``Share`` is ``share(identity, build) -> network``: ``identity`` (a tuple of strings and
numbers) names the weights and the options that change the network's output, ``build`` (a
picklable zero-argument callable, e.g. ``functools.partial``) loads it. The stage gives
its factory one that shares as ``models.share`` says; direct callers and tests use
:func:`no_sharing`. A shared network may be a proxy: call only its methods, with plain
numpy, tuple and dict arguments.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

Share = Callable[[tuple, Callable[[], Any]], Any]


def no_sharing(identity: tuple, build: Callable[[], Any]) -> Any:
    """A ``Share`` that builds its own copy."""
    return build()
