"""Foreign checkpoint -> suite model (in memory) or suite checkpoint (on disk).

:func:`import_foreign` reads the file (:mod:`place_bench.model.foreign`), picks the adapter of
``format`` (and ``arch``, or the one whose ``detect`` keys the file holds), builds the suite
model the adapter declares, converts the state dict, refuses partial loads
(:mod:`place_bench.model.load_report`) and loads the rest strictly.
:func:`import_checkpoint` also writes the result as a suite checkpoint whose card records the
source file's SHA-256, the adapter (its whole declaration), the load report and the flags.

The text encoder of a foreign checkpoint is rebuilt from a local folder (``text_model``): its
``config.json`` gives the BERT dimensions (the adapter may fix the layer count) and its
vocabulary gives the tokenizer; the weights come from the checkpoint. Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from place_bench.model.adapters import CheckpointAdapter, TextSpec
from place_bench.model.foreign import ForeignState, read_foreign_checkpoint
from place_bench.model.load_report import LoadReport, refuse_if_needed
from place_bench.model.weights import PartialLoadError, require_local_path

#: config.json keys that define a BERT's architecture (everything else in the file is ignored)
BERT_CONFIG_KEYS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
                    "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "pad_token_id",
                    "initializer_range", "position_embedding_type")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json")


class UnknownFormatError(ValueError):
    pass


@dataclasses.dataclass
class ImportedModel:
    """A suite model built from a foreign checkpoint.

    ``config``: the suite config (``model``, ``data.pipeline``, ``method``) the card records;
    ``provenance``: the card's ``extra.import`` section (see :func:`import_foreign`).
    """

    model: Any
    config: dict
    report: LoadReport
    adapter: CheckpointAdapter
    source: ForeignState
    provenance: dict


# -- adapters -----------------------------------------------------------------------------------

def all_adapters() -> list[CheckpointAdapter]:
    from place_bench import registry as registries

    return [info.obj for info in registries.components("checkpoint_adapter")]


def formats() -> list[str]:
    return sorted({a.format for a in all_adapters()})


def adapters_of(format: str) -> list[CheckpointAdapter]:
    found = [a for a in all_adapters() if a.format == format]
    if not found:
        raise UnknownFormatError(f"unknown checkpoint format {format!r}; formats: {', '.join(formats()) or 'none'} "
                                 "(`place-bench plugins --kind checkpoint_adapter` lists the adapters)")
    return found


def select_adapter(format: str, state: Mapping[str, torch.Tensor], arch: str | None = None) -> CheckpointAdapter:
    """The adapter of ``format`` for ``arch``, or the one whose ``detect`` keys ``state`` holds."""
    candidates = adapters_of(format)
    if arch is not None:
        chosen = [a for a in candidates if a.arch == arch]
        if not chosen:
            raise UnknownFormatError(f"format {format!r} has no architecture {arch!r}; "
                                     f"architectures: {', '.join(sorted(a.arch for a in candidates))}")
        return chosen[0]
    hits = [a for a in candidates if a.recognises(a.strip(state))]
    if len(hits) == 1:
        return hits[0]
    keys = ", ".join(list(state)[:5])
    if not hits:
        expected = "; ".join(f"{a.arch}: {', '.join(a.detect)}" for a in candidates)
        raise UnknownFormatError(f"no {format!r} adapter recognises this file (its first keys: {keys}); each "
                                 f"architecture expects these keys: {expected}. Is it another format?")
    raise UnknownFormatError(f"several {format!r} adapters recognise this file ({', '.join(a.arch for a in hits)}); "
                             "pass --arch")


# -- the suite config ---------------------------------------------------------------------------

def text_encoder_config(spec: TextSpec, text_model: str | os.PathLike | None, adapter: str) -> dict:
    """The ``hf_text`` config of a foreign text encoder: dimensions from ``text_model``'s
    config.json (layer count from ``spec``), tokenizer from its vocabulary, weights from the file."""
    if text_model is None:
        raise PartialLoadError(
            f"adapter {adapter!r} rebuilds the checkpoint's text encoder and needs its configuration and "
            f"vocabulary: {spec.tokenizer}. Pass --text-model DIR (text_model=DIR) with a local folder holding "
            f"its config.json and vocab.txt (e.g. a copy of the Hugging Face model folder); "
            f"PLACE-Bench never downloads"
        )
    folder = require_local_path(text_model, "--text-model",
                                f"a folder with config.json and vocab.txt ({spec.tokenizer})")
    config_file = folder / "config.json"
    if not folder.is_dir() or not config_file.is_file():
        raise PartialLoadError(f"--text-model '{folder}' must be a folder holding config.json (and vocab.txt): "
                               f"{spec.tokenizer}")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise PartialLoadError(f"--text-model '{folder}' has no tokenizer vocabulary ({' or '.join(TOKENIZER_FILES)}): "
                               f"{spec.tokenizer}")
    raw = json.loads(config_file.read_text())
    if raw.get("model_type", "bert") != "bert":
        raise PartialLoadError(f"--text-model '{folder}': model_type {raw.get('model_type')!r}, but adapter "
                               f"{adapter!r} expects a BERT ({spec.tokenizer})")
    bert = {k: raw[k] for k in BERT_CONFIG_KEYS if k in raw}
    bert.setdefault("model_type", "bert")
    if spec.num_layers is not None:
        bert["num_hidden_layers"] = int(spec.num_layers)
    return dict(type="hf_text", config=bert, tokenizer_path=str(folder.resolve()), **dict(spec.hf_text))


def suite_config(adapter: CheckpointAdapter, stripped: Mapping[str, torch.Tensor],
                 text_model: str | os.PathLike | None, options: Mapping[str, Any] | None = None,
                 label: str | None = None) -> dict:
    """``{"model": ..., "data": {"pipeline": ...}, "method": ...}`` for ``adapter`` and this file."""
    model = adapter.resolve(dict(adapter.model), stripped)
    model["text_encoder"] = None
    if adapter.text is not None:
        model["text_encoder"] = text_encoder_config(adapter.text, text_model, adapter.name)
    method = dict(adapter.method, imported=True, adapter=adapter.name)
    if label:
        method["label"] = label
    config = {"model": model, "data": {"pipeline": dict(adapter.pipeline)}, "method": method}
    for dotted, value in (options or {}).items():
        if not dotted.startswith(("model.", "data.")):
            raise ValueError(f"import option {dotted!r}: only model.* and data.* keys can be set")
        _set_dotted(config, dotted, value)
    return config


def _set_dotted(config: dict, dotted: str, value: Any) -> None:
    node = config
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


# -- importing ----------------------------------------------------------------------------------

def foreign_subject_id(source_sha256: str, format: str, arch: str | None = None, allow_missing: bool = False,
                       allow_unexpected: bool = False, options: Mapping[str, Any] | None = None, seed: int = 0) -> str:
    """The evaluation identity of a foreign checkpoint loaded directly: ``import:<sha256>`` of the
    source file's SHA-256, the format, ``arch`` as given, the override flags, the options and the
    seed (of weights an ``allow_missing`` load leaves at their initial values)."""
    payload = json.dumps({"source_sha256": source_sha256, "format": format, "arch": arch,
                          "allow_missing": bool(allow_missing), "allow_unexpected": bool(allow_unexpected),
                          "options": dict(options or {}), "seed": int(seed)}, sort_keys=True, default=str)
    return "import:" + hashlib.sha256(payload.encode()).hexdigest()


def import_foreign(
    path: str | os.PathLike,
    format: str,
    *,
    text_model: str | os.PathLike | None = None,
    arch: str | None = None,
    allow_pickle: bool = False,
    allow_missing: bool = False,
    allow_unexpected: bool = False,
    options: Mapping[str, Any] | None = None,
    label: str | None = None,
    seed: int = 0,
) -> ImportedModel:
    """Build the suite model of a foreign checkpoint; refuse partial loads.

    :param format: an adapter format (``mgca``, ``gloria``, ``convirt``, ``benchx``, or a plugin's).
    :param text_model: local folder with the text encoder's config.json and vocabulary.
    :param arch: the adapter's architecture (``resnet50``, ``vit_b16``); None = detect from keys.
    :param allow_pickle: fully unpickle a torch file (trusted files only).
    :param allow_missing: load although suite weights are missing (they keep their ``seed``-ed
        initial values); recorded. ``allow_unexpected``: ignore unexplained file keys; recorded.
    :param options: dotted ``model.*`` / ``data.*`` keys set in the suite config (e.g. the
        width of a non-standard ViT, the image pipeline).
    :param label: the method label (default: the adapter's).
    :raises ImportRefusedError: keys missing or unexpected without the override, or shapes differ.
    """
    from place_bench.model.vlm import VisionLanguageModel
    from place_bench.plugin_manager import get_plugin_manager

    get_plugin_manager()
    options = dict(options or {})
    foreign = read_foreign_checkpoint(path, allow_pickle=allow_pickle)
    adapter = select_adapter(format, foreign.state, arch)
    stripped = adapter.strip(foreign.state)
    config = suite_config(adapter, stripped, text_model, options, label)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = VisionLanguageModel(**config["model"])
    initial = model.state_dict()
    state, report = adapter(stripped, initial)
    report.allow_missing, report.allow_unexpected = bool(allow_missing), bool(allow_unexpected)
    refuse_if_needed(report, str(foreign.path))
    model.load_state_dict({**initial, **state}, strict=True)
    model.eval()
    if "allow_missing" in report.overrides:
        config["method"]["label"] = f"{config['method'].get('label') or config['method'].get('name')} [partial load]"
    if report.overrides:
        config["method"]["load_overrides"] = report.overrides
    flags = {"allow_pickle": bool(allow_pickle), "allow_missing": bool(allow_missing),
             "allow_unexpected": bool(allow_unexpected)}
    provenance = _provenance(adapter, foreign, config, report, flags, options, seed,
                             foreign_subject_id(foreign.sha256, format, arch, allow_missing, allow_unexpected,
                                                options, seed))
    return ImportedModel(model, config, report, adapter, foreign, provenance)


def _provenance(adapter: CheckpointAdapter, foreign: ForeignState, config: dict, report: LoadReport,
                flags: dict, options: dict, seed: int, subject_id: str) -> dict[str, Any]:
    """The card's ``extra.import`` section (JSON): source, adapter declaration, report, flags."""
    text = config["model"]["text_encoder"]
    text_model = None
    if text is not None:
        folder = Path(text["tokenizer_path"])
        text_model = {"path": str(folder), "tokenizer": adapter.text.tokenizer,
                      "config_sha256": hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()}
    return {
        "adapter": adapter.name, "format": adapter.format, "arch": adapter.arch,
        "source_format": adapter.source_format, "reference": adapter.reference,
        "source": foreign.provenance(), "text_model": text_model, "flags": flags, "options": options,
        "subject_id": subject_id, "seed": int(seed), "load_report": report.to_dict(), "notes": list(adapter.notes),
        "zero_shot": {"offered": adapter.zero_shot is None and text is not None, "reason": adapter.zero_shot},
        "declaration": adapter.describe(),
    }


def import_checkpoint(src: str | os.PathLike, format: str, out: str | os.PathLike,
                      **kwargs: Any) -> tuple[Path, ImportedModel]:
    """:func:`import_foreign`, then write ``out`` (``.safetensors``) and its card; return both.

    The card's ``extra.import`` holds the provenance (source SHA-256, adapter declaration, load
    report, flags, notes); ``config.method`` names the method with ``imported: true``.
    """
    from place_bench.model.checkpoint import save_checkpoint

    imported = import_foreign(src, format, **kwargs)
    path = save_checkpoint(imported.model, out, imported.config, extra={"import": imported.provenance})
    return path, imported


def record_load_report(provenance: Mapping[str, Any], route: str) -> dict[str, Any]:
    """What result records carry about an imported model: the source, the adapter, the flags and
    :meth:`LoadReport.summary` (``route``: ``"foreign checkpoint"`` or ``"imported suite checkpoint"``)."""
    report = LoadReport(**{k: v for k, v in provenance["load_report"].items()
                           if k in {f.name for f in dataclasses.fields(LoadReport)}})
    source = provenance.get("source") or {}
    return {"source": route, "strict": not report.overrides, "adapter": provenance.get("adapter"),
            "format": provenance.get("format"), "source_path": source.get("path"),
            "source_sha256": source.get("sha256"), "container": source.get("container"),
            "flags": dict(provenance.get("flags") or {}), "zero_shot": provenance.get("zero_shot"),
            **report.summary()}
