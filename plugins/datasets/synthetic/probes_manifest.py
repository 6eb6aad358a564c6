"""Manifests of the synthetic pathology-level probes (datasets.md section 4.8), written straight
from the generator: laterality, negation and severity.

Probes (:data:`PROBES`; classes in :data:`.subsets.PROBE_PROMPTS` order, one prompt per class)

=========================  =============================================  ========================
probe                      class 0 / class 1                              latent rule
=========================  =============================================  ========================
laterality_effusion        ``left`` / ``right``                           side of the single
laterality_consolidation   ``left`` / ``right``                           moderate finding
negation_effusion          ``present`` / ``absent``                       effusion forced /
                                                                          forbidden (others free)
severity_effusion          ``small`` / ``large``                          severity ``mild`` /
severity_pneumothorax      ``small`` / ``large``                          ``severe``
=========================  =============================================  ========================

Files: ``<out_dir>/<probe>/images/<sample_id>.png`` (rendered frontal, ``image_px`` square) and
``<out_dir>/<probe>/suite.parquet`` + ``suite.json``.

Rows: ``dataset = "synthetic_probe_<probe>"``; ``sample_id = subject_id = study_id =
"<split>_<index:06d>"`` (``index`` = the builder's slot, class position * count + j); split
``test`` (``n`` per class) and ``train`` (``n_train`` per class, default ``n``), drawn under the
generator split names ``"<probe>/test"`` and ``"<probe>/train"`` so the two never share a study
(nor with other synthetic sets); ``frac_rank`` on train rows =
``stratified_frac_ranks(class_index, 42)`` over the train rows in ``sample_id`` order;
``class_index`` / ``class_name``; ``labels`` = one-hot over the class names; MIMIC-style
``report`` / ``findings`` / ``impression`` (null when the generator draws its empty / missing
report variant, about 1 % of studies); ``view`` PA or AP (balanced per class);
``source_row`` = JSON of the generator spec and the probe finding as sampled.

Sidecar: the usual manifest facts (``native_root``, ``label_names`` = ``class_names``, counts,
``frac_base``, manifest SHA-256) plus ``probe``, ``prompts`` (class name -> ``[prompt]``) and
``generator`` (the settings). Writing is idempotent: when the sidecar's ``generator`` equals the
requested settings and the manifest matches its recorded SHA-256, nothing is touched. Otherwise
the whole probe folder is written into a temporary sibling and renamed into place, so readers
never see half of it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from place_bench.hookspecs import hookimpl

from .latent import SampleSpec, check_contrast_gain, gain_suffix
from .subsets import PROBE_PROMPTS, laterality_probe_specs, negation_probe_specs, severity_probe_specs

__all__ = ["PROBES", "Probe", "SyntheticProbes", "probe_settings", "write_probe_manifest", "write_probe_manifests"]

#: Bump when rows or images change for the same settings (invalidates existing manifests).
FORMAT_VERSION = 1
MANIFEST_NAME = "suite.parquet"
FRACTION_SEED = 42


@dataclass(frozen=True)
class Probe:
    """One probe: the subset builder, the spec tag that decides the class, and the class names."""

    name: str
    kind: str  # laterality | negation | severity
    finding: str
    tag: str
    tag_values: tuple[str, str]  # tag value of class 0, class 1
    class_names: tuple[str, str]
    build: Callable[..., list[SampleSpec]]

    @property
    def dataset(self) -> str:
        return f"synthetic_probe_{self.name}"

    @property
    def prompts(self) -> tuple[str, str]:
        return PROBE_PROMPTS[(self.kind, self.finding)]

    def specs(self, seed: int, n_per_class: int, split: str) -> list[SampleSpec]:
        return self.build(seed, n_per_class, split=split)

    def class_of(self, spec: SampleSpec) -> int:
        return self.tag_values.index(spec.tag(self.tag))


def _laterality(finding):
    return lambda seed, n, split: laterality_probe_specs(seed, n, finding=finding, split=split)


def _severity(finding):
    return lambda seed, n, split: severity_probe_specs(seed, n, finding=finding, split=split)


PROBES: dict[str, Probe] = {
    p.name: p
    for p in (
        Probe("laterality_effusion", "laterality", "effusion", "side", ("left", "right"), ("left", "right"),
              _laterality("effusion")),
        Probe("laterality_consolidation", "laterality", "consolidation", "side", ("left", "right"),
              ("left", "right"), _laterality("consolidation")),
        Probe("negation_effusion", "negation", "effusion", "label", ("1", "0"), ("present", "absent"),
              lambda seed, n, split: negation_probe_specs(seed, n, split=split)),
        Probe("severity_effusion", "severity", "effusion", "severity", ("mild", "severe"), ("small", "large"),
              _severity("effusion")),
        Probe("severity_pneumothorax", "severity", "pneumothorax", "severity", ("mild", "severe"),
              ("small", "large"), _severity("pneumothorax")),
    )
}


def _probe(name: str) -> Probe:
    if name not in PROBES:
        raise ValueError(f"unknown synthetic probe {name!r}; known: {', '.join(PROBES)}")
    return PROBES[name]


def probe_settings(probe: str, n: int, n_train: int | None, image_px: int, seed: int,
                   contrast_gain: float = 1.0) -> dict:
    """The sidecar's ``generator`` entry; equal settings mean an identical manifest.

    ``contrast_gain`` is the synthetic world's lesion contrast multiplier (datasets.md §4.9,
    :class:`.latent.SampleSpec`); it appears in the settings only when it is not 1.0, so
    manifests written before the knob existed stay current.
    """
    _probe(probe)
    n_train = n if n_train is None else n_train
    if int(n) < 1 or int(n_train) < 1:
        raise ValueError(f"n and n_train must be positive, got {n}, {n_train}")
    settings = {"probe": probe, "n": int(n), "n_train": int(n_train), "image_px": int(image_px),
                "seed": int(seed), "format_version": FORMAT_VERSION}
    gain = check_contrast_gain(contrast_gain)
    if gain != 1.0:
        settings["contrast_gain"] = gain
    return settings


def probe_dataset(probe: str, contrast_gain: float = 1.0) -> str:
    """The dataset name a probe's records are filed under: ``synthetic_probe_<probe>``, with
    ``_gain<g>`` appended for another contrast gain (records of two gains never share a
    leaderboard cell)."""
    name = _probe(probe).dataset
    return name + gain_suffix(contrast_gain)


def probe_base_dataset(dataset: str) -> str:
    """Inverse of :func:`probe_dataset`'s suffix: ``synthetic_probe_<probe>_gain<g>`` ->
    ``synthetic_probe_<probe>`` (same classes and prompts); any other name as it is."""
    base, sep, gain = dataset.rpartition("_gain")
    if sep and base.startswith("synthetic_probe_") and base[len("synthetic_probe_"):] in PROBES:
        try:
            float(gain)
        except ValueError:
            return dataset
        return base
    return dataset


#: Settings a probe entry may give after its name (``synthetic_probes:NAME?KEY=VALUE&...``).
PROBE_OPTIONS = {"n": int, "n_train": int, "image_px": int, "seed": int, "contrast_gain": float}
_ENTRY = re.compile(r"^synthetic_probes(?::(?P<name>[^?]*))?(?:\?(?P<query>.*))?$")


def is_probe_entry(value: str) -> bool:
    """Whether a dataset entry names synthetic probe sets (``synthetic_probes[:NAME][?...]``)."""
    return bool(_ENTRY.match(str(value)))


def parse_probe_entry(value: str) -> tuple[list[str], dict]:
    """``synthetic_probes[:NAME][?KEY=VALUE&...]`` -> (probe names, :class:`SyntheticProbes` settings).

    No name = every probe. Keys: ``n``, ``n_train``, ``image_px``, ``seed`` (integers) and
    ``contrast_gain`` (a number), e.g. ``synthetic_probes:laterality_effusion?contrast_gain=3``.
    An unknown probe or key, or a value that is not a number, is a ValueError naming it.
    """
    match = _ENTRY.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a synthetic probe entry (synthetic_probes[:NAME][?KEY=VALUE&...])")
    name = match.group("name")
    names = [_probe(name).name] if name else list(PROBES)
    options: dict = {}
    for item in filter(None, (match.group("query") or "").split("&")):
        key, sep, text = item.partition("=")
        if key not in PROBE_OPTIONS or not sep:
            raise ValueError(f"{value!r}: unknown probe setting {item!r}; known: "
                             + ", ".join(f"{k}=<{t.__name__}>" for k, t in PROBE_OPTIONS.items()))
        try:
            options[key] = PROBE_OPTIONS[key](text)
        except ValueError:
            raise ValueError(f"{value!r}: {key}={text!r} is not a{'n integer' if PROBE_OPTIONS[key] is int else ' number'}") from None
    return names, options


def _is_current(manifest: Path, settings: dict) -> bool:
    from place_bench.data.manifest import ManifestError, read_sidecar, sha256_file

    if not manifest.is_file():
        return False
    try:
        sidecar = read_sidecar(manifest)
    except ManifestError:
        return False
    return sidecar.get("generator") == settings and sidecar.get("manifest", {}).get("sha256") == sha256_file(manifest)


def _rows(probe: Probe, folder: Path, settings: dict) -> list[dict]:
    from PIL import Image

    from .render import to_uint8
    from .study import generate_from_spec

    (folder / "images").mkdir(parents=True, exist_ok=True)
    names = probe.class_names
    rows = []
    gain = settings.get("contrast_gain", 1.0)
    dataset = probe_dataset(probe.name, gain)
    for split, count in (("test", settings["n"]), ("train", settings["n_train"])):
        for spec in probe.specs(settings["seed"], count, f"{probe.name}/{split}"):
            spec = dataclasses.replace(spec, contrast_gain=gain)
            study = generate_from_spec(spec, settings["image_px"], with_lateral=False, styles=("mimic",))
            c = probe.class_of(spec)
            sample_id = f"{split}_{spec.index:06d}"
            rel = f"images/{sample_id}.png"
            Image.fromarray(to_uint8(study.frontal)).save(folder / rel)
            report = study.reports["mimic"]
            f = study.latent.finding(probe.finding)
            source = {
                "spec": {"seed": spec.seed, "split": spec.split, "index": spec.index, "profile": spec.profile,
                         "attempt": spec.attempt, "tags": dict(spec.tags)},
                "finding": None if f is None else {"kind": f.kind, "side": f.side, "severity": f.severity,
                                                   "certainty": f.certainty},
            }
            rows.append(dict(
                dataset=dataset, sample_id=sample_id, subject_id=sample_id, study_id=sample_id,
                image_path=rel, image_format="png", width=settings["image_px"], height=settings["image_px"],
                view=study.view, split=split, report=report.text or None, findings=report.sections.get("findings"),
                impression=report.sections.get("impression"), labels=[float(k == c) for k in range(len(names))],
                class_index=c, class_name=names[c], source_row=json.dumps(source, sort_keys=True),
            ))
    rows.sort(key=lambda r: r["sample_id"])
    return rows


def _write_folder(probe: Probe, folder: Path, native_root: Path, settings: dict) -> None:
    from place_bench.data.manifest import SCHEMA_VERSION, write_manifest, write_sidecar
    from place_bench.data.splits import stratified_frac_ranks

    rows = _rows(probe, folder, settings)
    train = [r for r in rows if r["split"] == "train"]
    for r, rank in zip(train, stratified_frac_ranks([r["class_index"] for r in train], FRACTION_SEED).tolist()):
        r["frac_rank"] = int(rank)
    manifest = folder / MANIFEST_NAME
    summary = write_manifest(manifest, rows, label_names=probe.class_names)
    write_sidecar(manifest.with_suffix(".json"), {
        "dataset": probe_dataset(probe.name, settings.get("contrast_gain", 1.0)),
        "protocol": "suite",
        "schema_version": SCHEMA_VERSION,
        "native_root": str(native_root),
        "probe": probe.name,
        "label_names": list(probe.class_names),
        "class_names": list(probe.class_names),
        "prompts": {c: [t] for c, t in zip(probe.class_names, probe.prompts)},
        "generator": settings,
        "seeds": {"generator": settings["seed"], "fraction": FRACTION_SEED},
        "split_rule": f"test: n per class under generator split '{probe.name}/test'; train: n_train per class "
                      f"under '{probe.name}/train'",
        "frac_base": len(train),
        "frac_order": "stratified by class_index",
        "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
        "counts": summary.counts,
        "manifest": {"file": manifest.name, "rows": summary.rows, "sha256": summary.sha256,
                     "fingerprint": summary.fingerprint},
    })


def _swap_in(staging: Path, folder: Path, manifest: Path, settings: dict) -> None:
    """Rename ``staging`` to ``folder``, moving a stale ``folder`` aside first."""
    graveyard = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
    try:
        if folder.exists():
            os.replace(folder, graveyard / folder.name)
        try:
            os.rename(staging, folder)
        except OSError:
            if not _is_current(manifest, settings):  # someone else wrote other settings meanwhile
                raise
    finally:
        shutil.rmtree(graveyard, ignore_errors=True)


def write_probe_manifest(out_dir: str | Path, probe: str, n: int = 20, n_train: int | None = None,
                         image_px: int = 64, seed: int = 0, contrast_gain: float = 1.0) -> Path:
    """Write (or find current) ``<out_dir>/<probe>/suite.parquet`` + sidecar; return the manifest path."""
    p = _probe(probe)
    settings = probe_settings(probe, n, n_train, image_px, seed, contrast_gain)
    out_dir = Path(out_dir)
    folder = out_dir / probe
    manifest = folder / MANIFEST_NAME
    if _is_current(manifest, settings):
        return manifest
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{probe}.", dir=out_dir))
    try:
        _write_folder(p, staging, folder.resolve(), settings)
        _swap_in(staging, folder, manifest, settings)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def write_probe_manifests(out_dir: str | Path, n: int = 20, n_train: int | None = None, image_px: int = 64,
                          seed: int = 0, probes: Sequence[str] = tuple(PROBES)) -> dict[str, Path]:
    """:func:`write_probe_manifest` for each of ``probes``; returns probe -> manifest path."""
    return {name: write_probe_manifest(out_dir, name, n, n_train, image_px, seed) for name in probes}


class SyntheticProbes:
    """Dataset component ``synthetic_probes``: one probe's manifest, written on first use.

    ``materialize()`` returns ``<root>/<settings key>/<probe>/suite.parquet`` (the key keeps
    different settings apart); the images' root is :attr:`native_root`, also recorded in the
    sidecar, which the loaders use when no ``root`` is given. Configs::

        dataset = dict(type="synthetic_probes", probe="laterality_effusion", n=64, image_px=64,
                       root="work/synthetic_probes")
    """

    def __init__(self, probe: str = "laterality_effusion", n: int = 64, n_train: int | None = None,
                 image_px: int = 64, seed: int = 0, root: str = "work/synthetic_probes", contrast_gain: float = 1.0):
        self.settings = probe_settings(probe, n, n_train, image_px, seed, contrast_gain)
        self.probe = probe
        self.root = Path(root)

    @property
    def out_dir(self) -> Path:
        s = self.settings
        key = f"seed{s['seed']}_px{s['image_px']}_n{s['n']}_train{s['n_train']}"
        return self.root / (key + gain_suffix(s.get("contrast_gain", 1.0)))

    @property
    def native_root(self) -> Path:
        return self.out_dir / self.probe

    @property
    def class_names(self) -> tuple[str, str]:
        return PROBES[self.probe].class_names

    @property
    def prompts(self) -> dict[str, list[str]]:
        p = PROBES[self.probe]
        return {c: [t] for c, t in zip(p.class_names, p.prompts)}

    def materialize(self) -> Path:
        s = self.settings
        return write_probe_manifest(self.out_dir, self.probe, s["n"], s["n_train"], s["image_px"], s["seed"],
                                    s.get("contrast_gain", 1.0))


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "synthetic_probes", SyntheticProbes)
