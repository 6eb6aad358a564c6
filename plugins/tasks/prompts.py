"""Zero-shot prompt sets (datasets.md section 1.2 "Zero-shot prompts", section 2.3).

Vocabulary
    A *vocabulary* maps a class name to either

    * attribute lists (``{"severity": [...], "subtype": [...], "location": [...]}``): a prompt is
      one value from each list, joined by single spaces **in the mapping's key order** (an empty
      value leaves a double or leading/trailing space, kept as is: tokenizers ignore it and
      the reference code does the same); or
    * a fixed sequence of prompts, used whole.

Sampling (:func:`generate_class_prompts`)
    ``procedure="suite"`` (default): per class, the candidates are the **distinct** prompts of the
    product, sorted; the chosen prompts are ``candidates[i] for i in
    rng.permutation(len(candidates))[:n_per_class]`` with ``rng =
    numpy.random.Generator(PCG64(SeedSequence([seed, crc32(class_name)])))``. A class's draw
    therefore depends only on (vocabulary of that class, n, seed), not on the other classes.
    This does **not** reproduce GLoRIA's draws.

    ``procedure="gloria"``: GLoRIA's ``gloria.py::generate_chexpert_class_prompts``: one
    ``random.Random(seed)`` stream (GLoRIA calls ``random.seed(6)`` at import) and, class by class
    in vocabulary order, ``stream.sample(product, n)`` over the product *in nested-loop order,
    duplicates included* (the Pleural Effusion subtype list repeats "bilateral pleural effusion").
    With ``seed=6`` and the full :data:`CHEXPERT_CLASS_PROMPTS` this equals GLoRIA's first call
    after ``import gloria`` when nothing else drew from Python's global ``random`` in between
    (later calls, or other draws, give other prompts; not checked against GLoRIA's released runs).

    In both, ``n_per_class=None`` or ``n_per_class >=`` the number of candidates returns every
    candidate (BenchX's behaviour; GLoRIA itself raises when ``n`` exceeds the product), and fixed
    prompt lists are returned whole without drawing.

Prompt sets (:data:`PROMPT_SETS`, :func:`prompts_for`) are keyed by the manifest's ``dataset``
name. Zero-shot tasks should store the returned prompts in their results (section 2.3).
"""

from __future__ import annotations

import itertools
import random
import zlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence, Union

import numpy as np

__all__ = [
    "CHEXPERT_CLASSES",
    "CHEXPERT_CLASS_PROMPTS",
    "CHEXPERT_CLASS_PROMPTS_BENCHX",
    "DEFAULT_SEED",
    "NORMAL_PROMPTS",
    "PNEUMONIA_CLASS_PROMPTS",
    "PROCEDURES",
    "PROMPT_SETS",
    "PromptSet",
    "RSNA_PROMPTS",
    "class_prompt_product",
    "generate_class_prompts",
    "prompts_for",
]

ClassPrompts = Union[Mapping[str, Sequence[str]], Sequence[str]]
Vocabulary = Mapping[str, ClassPrompts]

#: GLoRIA's module-level ``random.seed(6)``; the default seed of both procedures.
DEFAULT_SEED = 6
PROCEDURES = ("suite", "gloria")

# ------------------------------------------------------------------------------------------------
# Vendored vocabularies (facts, kept verbatim: zero-shot numbers depend on the exact strings)
# ------------------------------------------------------------------------------------------------

# CheXpert 5-class vocabulary from GLoRIA (Huang et al., 2021), gloria/constants.py
# ``CHEXPERT_CLASS_PROMPTS``, https://github.com/marshuang80/gloria, Apache License 2.0.
# Strings and key order are GLoRIA's, typos included ("apperance of", "presistent",
# "at the right uppper lobe") as is the duplicated "bilateral pleural effusion"; note that
# Pleural Effusion's keys run severity, location, subtype.
CHEXPERT_CLASS_PROMPTS: dict[str, dict[str, tuple[str, ...]]] = {
    "Atelectasis": {
        "severity": ("", "mild", "minimal"),
        "subtype": (
            "subsegmental atelectasis",
            "linear atelectasis",
            "trace atelectasis",
            "bibasilar atelectasis",
            "retrocardiac atelectasis",
            "bandlike atelectasis",
            "residual atelectasis",
        ),
        "location": (
            "at the mid lung zone",
            "at the upper lung zone",
            "at the right lung zone",
            "at the left lung zone",
            "at the lung bases",
            "at the right lung base",
            "at the left lung base",
            "at the bilateral lung bases",
            "at the left lower lobe",
            "at the right lower lobe",
        ),
    },
    "Cardiomegaly": {
        "severity": ("",),
        "subtype": (
            "cardiac silhouette size is upper limits of normal",
            "cardiomegaly which is unchanged",
            "mildly prominent cardiac silhouette",
            "portable view of the chest demonstrates stable cardiomegaly",
            "portable view of the chest demonstrates mild cardiomegaly",
            "persistent severe cardiomegaly",
            "heart size is borderline enlarged",
            "cardiomegaly unchanged",
            "heart size is at the upper limits of normal",
            "redemonstration of cardiomegaly",
            "ap erect chest radiograph demonstrates the heart size is the upper limits of normal",
            "cardiac silhouette size is mildly enlarged",
            "mildly enlarged cardiac silhouette, likely left ventricular enlargement. other chambers are less prominent",
            "heart size remains at mildly enlarged",
            "persistent cardiomegaly with prominent upper lobe vessels",
        ),
        "location": ("",),
    },
    "Consolidation": {
        "severity": ("", "increased", "improved", "apperance of"),
        "subtype": (
            "bilateral consolidation",
            "reticular consolidation",
            "retrocardiac consolidation",
            "patchy consolidation",
            "airspace consolidation",
            "partial consolidation",
        ),
        "location": (
            "at the lower lung zone",
            "at the upper lung zone",
            "at the left lower lobe",
            "at the right lower lobe",
            "at the left upper lobe",
            "at the right uppper lobe",
            "at the right lung base",
            "at the left lung base",
        ),
    },
    "Edema": {
        "severity": ("", "mild", "improvement in", "presistent", "moderate", "decreased"),
        "subtype": ("pulmonary edema", "trace interstitial edema", "pulmonary interstitial edema"),
        "location": ("",),
    },
    "Pleural Effusion": {
        "severity": ("", "small", "stable", "large", "decreased", "increased"),
        "location": ("left", "right", "tiny"),
        "subtype": (
            "bilateral pleural effusion",
            "subpulmonic pleural effusion",
            "bilateral pleural effusion",
        ),
    },
}

#: The class order of the 5x200 manifests (``COMPETITION_LABELS``; class_index 0..4).
CHEXPERT_CLASSES: tuple[str, ...] = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")

#: BenchX's copy (unifier/blocks/zeroshot/prompts.py, https://github.com/yangzhou12/BenchX): the
#: same vocabulary with the one typo fix "at the right upper lobe"; the other typos are kept there too.
CHEXPERT_CLASS_PROMPTS_BENCHX: dict[str, dict[str, tuple[str, ...]]] = {
    cls: {
        key: tuple("at the right upper lobe" if v == "at the right uppper lobe" else v for v in values)
        for key, values in attrs.items()
    }
    for cls, attrs in CHEXPERT_CLASS_PROMPTS.items()
}

# RSNA pneumonia vocabulary from BenchX (Zhou et al., 2024), unifier/blocks/zeroshot/prompts.py
# ``PNEUMONIA_CLASS_PROMPTS``, https://github.com/yangzhou12/BenchX. Verbatim: 6 x 4 x 13 = 312
# prompts such as "focal viral at the left lower lobe"; the strings never contain the word
# "pneumonia", and "middle lobe" is given for both lungs -- both as in BenchX.
PNEUMONIA_CLASS_PROMPTS: dict[str, dict[str, tuple[str, ...]]] = {
    "Pneumonia": {
        "adjective": ("round", "early", "focal", "multifocal", "small", ""),
        "subtype": ("bacterial", "viral", "mycoplasma", ""),
        "location": (
            "at the mid lung zone",
            "at the upper lung zone",
            "at the right lung zone",
            "at the left lung zone",
            "at the lung bases",
            "at the right lung base",
            "at the left lung base",
            "at the bilateral lung bases",
            "at the left lower lobe",
            "at the right lower lobe",
            "at the left middle lobe",
            "at the right middle lobe",
            "",
        ),
    }
}

#: The "Normal" side of RSNA zero-shot: a **suite choice (unverified, datasets.md 2.3 warning)** --
#: neither GLoRIA nor BenchX publishes one. Common normal-study impressions, no pathology word.
NORMAL_PROMPTS: tuple[str, ...] = (
    "no acute cardiopulmonary process",
    "normal chest radiograph",
    "lungs are clear",
    "no focal consolidation",
    "heart size and mediastinal contours are normal",
)

#: RSNA binary zero-shot: class 0 "Normal" (``Target`` 0), class 1 "Pneumonia" (``Target`` 1).
RSNA_PROMPTS: dict[str, ClassPrompts] = {"Normal": NORMAL_PROMPTS, **PNEUMONIA_CLASS_PROMPTS}


# ------------------------------------------------------------------------------------------------
# Generation
# ------------------------------------------------------------------------------------------------


def class_prompt_product(attributes: Mapping[str, Sequence[str]]) -> list[str]:
    """Every prompt of one class: values joined by ``" "`` in key order, nested-loop order (the
    last key varies fastest), duplicates kept."""
    return [" ".join(parts) for parts in itertools.product(*attributes.values())]


def _class_seed(seed: int, class_name: str) -> np.random.Generator:
    sequence = np.random.SeedSequence([int(seed), zlib.crc32(class_name.encode("utf-8"))])
    return np.random.Generator(np.random.PCG64(sequence))


def generate_class_prompts(
    vocabulary: Vocabulary,
    n_per_class: int | None = 5,
    seed: int = DEFAULT_SEED,
    procedure: str = "suite",
) -> dict[str, list[str]]:
    """Prompts per class of ``vocabulary``, in its class order (see the module doc for both
    procedures). Deterministic for given arguments. Raises ``ValueError`` for an unknown
    procedure or ``n_per_class < 1``."""
    if procedure not in PROCEDURES:
        raise ValueError(f"procedure must be one of {PROCEDURES}, got {procedure!r}")
    if n_per_class is not None and int(n_per_class) < 1:
        raise ValueError(f"n_per_class must be a positive number or None, got {n_per_class!r}")
    stream = random.Random(seed) if procedure == "gloria" else None
    out: dict[str, list[str]] = {}
    for name, entry in vocabulary.items():
        if not isinstance(entry, Mapping):  # fixed prompt list (a bare string is one prompt)
            out[name] = [entry] if isinstance(entry, str) else list(entry)
            continue
        product = class_prompt_product(entry)
        candidates = product if procedure == "gloria" else sorted(set(product))
        if n_per_class is None or n_per_class >= len(candidates):
            out[name] = list(candidates)
        elif stream is not None:
            out[name] = stream.sample(candidates, int(n_per_class))
        else:
            order = _class_seed(seed, name).permutation(len(candidates))[: int(n_per_class)]
            out[name] = [candidates[i] for i in order.tolist()]
    return out


# ------------------------------------------------------------------------------------------------
# Prompt sets per dataset
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptSet:
    """Class names in ``class_index`` order and their vocabulary (same keys)."""

    class_names: tuple[str, ...]
    vocabulary: Vocabulary = field(repr=False)
    source: str = ""


def _probe_sets() -> dict[str, PromptSet]:
    from place_bench.plugins.datasets.synthetic.probes_manifest import PROBES

    return {
        p.dataset: PromptSet(p.class_names, {c: (t,) for c, t in zip(p.class_names, p.prompts)},
                             "synthetic probe (datasets.md 4.8), subsets.PROBE_PROMPTS")
        for p in PROBES.values()
    }


_CHEXPERT_SET = PromptSet(CHEXPERT_CLASSES, CHEXPERT_CLASS_PROMPTS, "GLoRIA constants.py (Apache-2.0)")

#: Manifest ``dataset`` name -> prompt set.
PROMPT_SETS: dict[str, PromptSet] = {
    "chexpert_5x200": _CHEXPERT_SET,
    "mimic_5x200": _CHEXPERT_SET,
    "rsna": PromptSet(("Normal", "Pneumonia"), RSNA_PROMPTS,
                      "BenchX pneumonia vocabulary; suite 'Normal' prompts (unverified choice)"),
    **_probe_sets(),
}


def prompts_for(
    dataset_name: str,
    class_names: Sequence[str] | None = None,
    n_per_class: int | None = 5,
    seed: int = DEFAULT_SEED,
    procedure: str = "suite",
) -> dict[str, list[str]]:
    """``class_name -> prompts`` for a dataset's zero-shot task, in ``class_names`` order (default:
    the prompt set's own order). Prompts are drawn over the whole set's vocabulary first, so a
    subset or reordering of classes gets the same prompts per class. Raises ``ValueError`` naming
    the dataset when it has no prompt set, ``ValueError`` naming classes it does not cover."""
    from place_bench.plugins.datasets.synthetic.probes_manifest import probe_base_dataset

    try:
        # a probe set made with another contrast gain has its probe's classes and prompts
        prompt_set = PROMPT_SETS[probe_base_dataset(dataset_name)]
    except KeyError:
        raise ValueError(
            f"no zero-shot prompt set for dataset {dataset_name!r}; known: {', '.join(sorted(PROMPT_SETS))}"
        ) from None
    names = list(prompt_set.class_names if class_names is None else class_names)
    missing = [c for c in names if c not in prompt_set.vocabulary]
    if missing:
        raise ValueError(
            f"prompt set of dataset {dataset_name!r} has no prompts for class(es) {missing}; "
            f"it covers {list(prompt_set.class_names)}"
        )
    prompts = generate_class_prompts(prompt_set.vocabulary, n_per_class, seed, procedure)
    return {c: prompts[c] for c in names}
