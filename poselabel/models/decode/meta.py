"""A sample's ``json`` member -> its metadata dict, or :class:`InvalidJson`.

Whatever the bytes hold, parsing either returns a dict that every later step can carry and
write (pickle between workers, ``json.dumps`` into ``meta_json``, Arrow's UTF-8 columns) or
raises ``InvalidJson`` (a ``ValueError``) with a one-line reason:

- not JSON, or not UTF-8: invalid;
- nested deeper than ``MAX_JSON_DEPTH`` arrays/objects: invalid (Python's parser recurses, so a
  member nested 100,000 deep would raise ``RecursionError``, and one a few hundred deep parses
  but cannot be pickled or dumped again inside a pipeline's deep stack);
- strings (keys included) holding lone UTF-16 surrogates (``"\\ud800"``, valid JSON escapes
  that UTF-8 cannot encode): each lone surrogate becomes U+FFFD, pairs stay what they mean;
- a value that is not an object becomes ``{"value": value}``.
"""
from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 64  # img2dataset's json is flat; deeper members are refused


class InvalidJson(ValueError):
    """The json member cannot be the sample's metadata."""


def parse_meta(data: bytes) -> dict[str, Any]:
    """Parse a json member (module docstring); raises :class:`InvalidJson`."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise InvalidJson(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(str(exc)) from None
    if nesting_depth(value) > MAX_JSON_DEPTH:
        raise InvalidJson(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(value, dict):
        value = {"value": value}
    return _without_lone_surrogates(value)


def nesting_depth(value: Any) -> int:
    """Levels of arrays/objects in a parsed JSON value (a scalar: 0), without recursing."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        todo.extend((child, depth + 1) for child in children)
    return deepest


def _without_lone_surrogates(meta: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(meta, ensure_ascii=False)
    try:
        text.encode("utf-8")
        return meta
    except UnicodeEncodeError:  # a lone surrogate somewhere: U+FFFD in its place, pairs joined
        return json.loads(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))
