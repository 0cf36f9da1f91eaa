"""The accept rule: named reject reasons and the fit score of each person (numpy only).

The same rule runs in the pipeline (``transforms/judge_quality.py``, on ``Person`` records)
and in ``poselabel filter`` (on persons-table rows): both build
:class:`~poselabel.models.quality.facts.PersonFacts` first, then call :func:`assess_image`
(or :func:`judge_image`) with a ``QualityConfig``. :func:`judge` is a loop over
``checks.CHECKS`` (one function per reason, in the order reasons are reported).

Two rules (``accept_rule``): "score" (the default) weighs the evidence checks
(``checks.SCORED_CHECKS``) of a fitted person together in its fit score (``fit_score.py``):
below ``min_fit_score`` (``min_fit_score_segmenter`` for fits of segmenter masks, scored by
their own model: ``fit_score.model_path``) it gets ``low_fit_score``, followed by the evidence checks that fired,
which never reject alone. A fitted person without a score (a measure missing) is judged by
the checks, its IoU floor raised to ``min_mask_iou_unscored``. Under "checks" each check
rejects alone and ``low_fit_score`` never fires. docs/quality.md says how the defaults were
chosen.
"""
from __future__ import annotations

from typing import Any

from poselabel.models.quality import fit_score as fs
from poselabel.models.quality.checks import REASON_LOW_FIT_SCORE, Evidence, run_checks
from poselabel.models.quality.evidence import with_peers
from poselabel.models.quality.facts import PersonFacts, facts_from_row, is_fitted, person_facts
from poselabel.records import ImageRecord, replace

_UNSET = object()


def judge(f: PersonFacts, config, *, score: Any = _UNSET) -> tuple[str, ...]:
    """The reject reasons of one person under a ``QualityConfig`` (empty: accepted).

    ``score``: the person's :func:`fit_score` when the caller has it already
    (:func:`assess_image`); computed here otherwise (``accept_rule`` "score")."""
    if score is _UNSET:
        score = fit_score(f, config) if config.accept_rule == "score" and is_fitted(f) else None
    scored = config.accept_rule == "score" and is_fitted(f) and score is not None
    reasons, evidence = run_checks(f, Evidence.of(f, config, scored), config)
    if scored and REASON_LOW_FIT_SCORE not in config.disabled_checks and score < fs.min_score(f, config):
        reasons += [REASON_LOW_FIT_SCORE, *evidence]
    return tuple(reasons)


def fit_score(f: PersonFacts, config) -> float | None:
    """The fit score of one person (``fit_score.model_path``: by the masks' kind), in (0, 1): the
    benchmark's share of good fits among fits with this evidence. None when a measure the
    score needs is missing (``fit_score.scorable``: no mask IoU, no depth probe, or no focal
    margin for a mask on the border). Set ``f.peers`` first (``evidence.with_peers``) where
    the image is known."""
    scored = _score_inputs(f, config)
    return None if scored is None else float(scored[0].score(scored[1]))


def explained_fit_score(f: PersonFacts, config) -> tuple[float, list[tuple[str, float]]] | None:
    """:func:`fit_score` and the measures it lost most on against a typical good fit
    (``FitScoreModel.explain``: ``(feature, logit lost)``, largest first); None where there
    is no score. For report cards."""
    scored = _score_inputs(f, config)
    if scored is None:
        return None
    model, x = scored
    return float(model.score(x)), model.explain(x)


def _score_inputs(f: PersonFacts, config):
    """``(model, features (F,))`` of one person, or None when it is not scorable."""
    x = fs.features(f, config)
    return (fs.load_model(fs.model_path(f, config)), x) if fs.scorable(x) else None


def judge_image(facts: list[PersonFacts], config) -> list[tuple[str, ...]]:
    """:func:`judge` on every person of one image, with the image-level checks
    (``focal_disagreement``): use this, not :func:`judge`, wherever the image is known."""
    return [judge(f, config) for f in with_peers(facts)]


def assess_image(facts: list[PersonFacts], config) -> list[tuple[tuple[str, ...], float | None]]:
    """``(reasons, fit_score)`` of every person of one image: :func:`judge_image`'s reasons and
    the column ``fit_score`` (:func:`fit_score` with the peers heard, under either
    ``accept_rule``; None: not fitted, or not scorable), each score computed once."""
    out = []
    for f in with_peers(facts):
        score = fit_score(f, config) if is_fitted(f) else None
        out.append((judge(f, config, score=score), score))
    return out


def judge_row(row: dict[str, Any], config) -> tuple[str, ...]:
    """:func:`judge` on one persons-table row alone (no image-level check)."""
    return judge(facts_from_row(row), config)


def judge_record(record: ImageRecord, config) -> ImageRecord:
    """``record`` with every person's ``accepted``, ``reject_reasons`` and ``fit_score`` set
    (:func:`assess_image` on the facts its persons-table rows will give)."""
    verdicts = assess_image([person_facts(record, p) for p in record.persons], config)
    persons = tuple(replace(p, accepted=not reasons, reject_reasons=reasons, fit_score=score)
                    for p, (reasons, score) in zip(record.persons, verdicts))
    return replace(record, persons=persons)
