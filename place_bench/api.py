"""The library API the CLI calls: configs with their plugins, models, checkpoints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from place_bench import config as config_mod
from place_bench.plugin_manager import get_plugin_manager


def load_config(
    name: str | os.PathLike,
    cfg_options: Mapping[str, Any] | None = None,
    plugin_dirs: Iterable[str | os.PathLike] = (),
    strict: bool | None = None,
):
    """Load and validate a config after loading every plugin it needs.

    Plugin folders come from ``plugin_dirs`` (the CLI flag) and the config's own
    ``plugin_dirs`` key (paths relative to the config file), so the components they
    register are known when the config is validated.
    """
    manager = get_plugin_manager(plugin_dirs, strict=strict)
    path = config_mod.resolve_config_path(name, manager.config_dirs())
    raw = config_mod.load_config(path, cfg_options, validate=False)
    own_dirs = raw.get("plugin_dirs") or []
    if isinstance(own_dirs, (str, os.PathLike)):
        own_dirs = [own_dirs]
    manager.load_dirs(Path(path).parent / Path(d).expanduser() for d in own_dirs)
    config_mod.validate_config(raw)
    return raw


def build_model(cfg) -> Any:
    """The :class:`~place_bench.model.vlm.VisionLanguageModel` of a config's ``model`` section."""
    from place_bench.model.vlm import VisionLanguageModel

    if "model" not in cfg:
        raise config_mod.ConfigError(f"{getattr(cfg, 'filename', '<config>')}: missing key 'model'")
    return VisionLanguageModel(**config_mod.to_plain(cfg.model))


def model_from_config_or_checkpoint(source: str | os.PathLike, cfg_options=None, plugin_dirs=()):
    """(model, config dict, checkpoint card or None) from a ``.safetensors`` checkpoint or a config."""
    from place_bench.model.checkpoint import build_model_from_checkpoint

    get_plugin_manager(plugin_dirs)
    if str(source).endswith(".safetensors"):
        model, card = build_model_from_checkpoint(source)
        return model, card["config"], card
    cfg = load_config(source, cfg_options, plugin_dirs)
    return build_model(cfg), config_mod.to_plain(cfg), None
