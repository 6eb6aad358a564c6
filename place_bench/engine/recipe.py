"""Was a checkpoint trained by the config that would train it now?

A benchmark skips a pretraining whose ``model.safetensors`` exists. If the method's config
changed since (a different objective weight, another ``_base_`` schedule, a new seed), that
checkpoint no longer is the method, and every evaluation of it would be filed under a recipe
it was not trained with. :func:`recipe_differences` compares the config saved in the
checkpoint's card with the config as loaded now, leaving out what does not change the weights
(logging and checkpoint intervals, the work folder, the method's display name, loader worker
counts, caches).

Both sides are compared as JSON values (tuples become lists, unknown objects strings), the
form in which the card stores its config.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

#: Dotted config keys (and their sub-keys) that do not change what is trained.
BOOKKEEPING_KEYS = (
    "work_dir",
    "filename",
    "launcher",
    "model_wrapper_cfg",   # set by the distributed launcher at run time
    "default_hooks",
    "custom_hooks",
    "visualizer",
    "log_processor",
    "log_level",
    "env_cfg",
    "method",             # name, label, reference: what the leaderboard shows
    "pretrain.log_interval",
    "pretrain.checkpoint_interval",
    "pretrain.max_keep_ckpts",
    "data.num_workers",
    "data.train.source.cache_dir",
)

_MISSING = "<absent>"


def as_json(value: Any) -> Any:
    """``value`` as the card stores it (a JSON round trip)."""
    return json.loads(json.dumps(value, default=str))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts and lists under dotted keys (list items by index: ``objectives.1.type``)."""
    if isinstance(value, Mapping) and value:
        items = ((str(k), v) for k, v in value.items())
    elif isinstance(value, list) and value:
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(flatten(item, f"{prefix}.{key}" if prefix else key))
    return out


def _bookkeeping(key: str) -> bool:
    # Top-level ``_name`` variables are a config file's helpers (``_iters = 1000``); what
    # they set shows in the real keys.
    return key.startswith("_") or any(key == k or key.startswith(k + ".") for k in BOOKKEEPING_KEYS)


def recipe_differences(trained: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``"key: trained VALUE, now VALUE"`` for each training-relevant leaf that differs, sorted by key.

    :param trained: the ``config`` of a checkpoint's card.
    :param current: the plain config that would train it now (``to_plain(load_config(...))``).
    """
    old, new = flatten(as_json(dict(trained))), flatten(as_json(dict(current)))
    lines = []
    for key in sorted(set(old) | set(new)):
        if _bookkeeping(key):
            continue
        before, after = old.get(key, _MISSING), new.get(key, _MISSING)
        if before != after:
            lines.append(f"{key}: trained {_short(before)}, now {_short(after)}")
    return lines


def _short(value: Any, width: int = 60) -> str:
    text = value if value == _MISSING else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."
