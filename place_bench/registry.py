"""The suite's component registries (mmengine ``Registry``, scope ``place_bench``).

Each registry holds one kind of component. Components are added only by plugins,
through the ``place_bench_register`` hook (see ``place_bench.hookspecs``), so that
every entry knows the plugin that provides it. Building goes through
:func:`build`, which turns an unknown ``type`` into a message naming the registry
and the closest registered names.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Mapping

from mmengine.registry import Registry

SCOPE = "place_bench"

IMAGE_ENCODERS = Registry("image_encoder", scope=SCOPE)
TEXT_ENCODERS = Registry("text_encoder", scope=SCOPE)
# Projection heads map encoder features into the joint space; the model assembly
# builds them from config like any other component, so they need a registry.
HEADS = Registry("head", scope=SCOPE)
OBJECTIVES = Registry("objective", scope=SCOPE)
TASKS = Registry("task", scope=SCOPE)
DATASETS = Registry("dataset", scope=SCOPE)
METRICS = Registry("metric", scope=SCOPE)
# Checkpoint adapters turn a foreign checkpoint (another code base's key naming) into a
# suite model; see place_bench.model.adapters for the declarative object they hold.
CHECKPOINT_ADAPTERS = Registry("checkpoint_adapter", scope=SCOPE)

#: kind name (as used on the command line and in hooks) -> registry
REGISTRIES: dict[str, Registry] = {
    "image_encoder": IMAGE_ENCODERS,
    "text_encoder": TEXT_ENCODERS,
    "head": HEADS,
    "objective": OBJECTIVES,
    "task": TASKS,
    "dataset": DATASETS,
    "metric": METRICS,
    "checkpoint_adapter": CHECKPOINT_ADAPTERS,
}


@dataclass(frozen=True)
class ComponentInfo:
    """Where a registered component came from."""

    kind: str
    name: str
    obj: Any
    plugin: str

    @property
    def source(self) -> str:
        module = getattr(self.obj, "__module__", "?")
        qualname = getattr(self.obj, "__qualname__", repr(self.obj))
        return f"{module}:{qualname}"


class UnknownComponentError(KeyError):
    """A config asked for a ``type`` no plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateComponentError(RuntimeError):
    """Two plugins registered the same name for the same kind."""


class UnknownKindError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


# (kind, name) -> ComponentInfo; the provenance the mmengine registries do not keep.
_PROVENANCE: dict[tuple[str, str], ComponentInfo] = {}


def registry_for(kind: str) -> Registry:
    """The registry of ``kind`` (one of :data:`REGISTRIES`)."""
    try:
        return REGISTRIES[kind]
    except KeyError:
        close = difflib.get_close_matches(kind, REGISTRIES, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownKindError(
            f"unknown component kind {kind!r}{hint}; kinds are: {', '.join(REGISTRIES)}"
        ) from None


def add_component(kind: str, name: str, obj: Any, plugin: str) -> None:
    """Register ``obj`` under ``name`` in the ``kind`` registry on behalf of ``plugin``.

    Raises :class:`DuplicateComponentError` naming both plugins when ``name`` is
    already taken in that registry.
    """
    registry = registry_for(kind)
    previous = _PROVENANCE.get((kind, name))
    if previous is not None:
        raise DuplicateComponentError(
            f"{kind} {name!r} is registered twice: by plugin {previous.plugin!r} "
            f"({previous.source}) and by plugin {plugin!r} "
            f"({ComponentInfo(kind, name, obj, plugin).source}); rename one of them"
        )
    registry.register_module(name=name, module=obj)
    _PROVENANCE[(kind, name)] = ComponentInfo(kind, name, obj, plugin)


def remove_plugin_components(plugin: str) -> None:
    """Drop everything ``plugin`` registered (used when its registration failed half-way)."""
    for key, info in list(_PROVENANCE.items()):
        if info.plugin == plugin:
            REGISTRIES[info.kind].module_dict.pop(info.name, None)
            del _PROVENANCE[key]


def clear() -> None:
    """Empty every registry (tests and a fresh plugin manager use this)."""
    for registry in REGISTRIES.values():
        registry.module_dict.clear()
    _PROVENANCE.clear()


def components(kind: str | None = None) -> list[ComponentInfo]:
    """Registered components, sorted by kind then name; all kinds when ``kind`` is None."""
    from place_bench.plugin_manager import get_plugin_manager

    get_plugin_manager()
    if kind is not None:
        registry_for(kind)
    return sorted(
        (info for info in _PROVENANCE.values() if kind is None or info.kind == kind),
        key=lambda info: (list(REGISTRIES).index(info.kind), info.name),
    )


def get_component(kind: str, name: str) -> ComponentInfo:
    """The registered component ``name`` of ``kind``, or :class:`UnknownComponentError`.

    Loads the plugins first if no plugin manager exists yet.
    """
    from place_bench.plugin_manager import get_plugin_manager  # circular at module level

    get_plugin_manager()
    info = _PROVENANCE.get((kind, name))
    if info is None:
        raise UnknownComponentError(_unknown_message(kind, name))
    return info


def _unknown_message(kind: str, name: str) -> str:
    registry = registry_for(kind)
    known = sorted(registry.module_dict)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.4)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    listing = f"; registered: {', '.join(known)}" if known and len(known) <= 12 else ""
    return (
        f"unknown {kind} type {name!r} in registry '{SCOPE}.{registry.name}'{hint}{listing}"
        f" (`place-bench plugins --kind {kind}` lists them with their plugins)"
    )


def build(kind: str, cfg: Mapping[str, Any], **default_args: Any) -> Any:
    """Build a ``kind`` component from a config dict holding ``type=NAME``.

    ``default_args`` fill keys the config does not set. The plugins must be loaded
    (``get_plugin_manager()``) before the first call; :func:`place_bench.api.build_component`
    does that for you.
    """
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise ValueError(f"a {kind} config must be a dict with a 'type' key, got {cfg!r}")
    get_component(kind, cfg["type"])  # a clear message for unknown names
    return registry_for(kind).build(dict(cfg), default_args=default_args or None)
