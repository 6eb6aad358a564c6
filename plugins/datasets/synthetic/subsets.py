"""Evaluation subsets of the synthetic world (§4.8) as pure functions.

Each builder returns a list of :class:`.latent.SampleSpec`; regenerate a sample
with :func:`.study.generate_from_spec`. Subset samples live in their own split
name (``"5xn"``, ``"laterality"`` ...) so they never collide with training data.
Probe samples are drawn *constructively*: the wanted finding is forced through
:class:`.latent.Constraints` (everything else — anatomy, pose, exposure, texture —
is sampled as usual), and a sample is accepted only when its labels satisfy the
subset's rule; otherwise the next ``attempt`` of the same slot is drawn. The
accepted attempt is stored in the spec, so regeneration never searches.

Views are balanced within every class (half PA, half AP; the extra one is PA when
the count is odd), which also balances the burned-in "PORTABLE"/"AP" shortcut.
"""

from __future__ import annotations

from typing import Callable, Optional

from .latent import Constraints, FindingRequest, SampleSpec, sample_latent, config_for_profile
from .lexicon import COMPETITION, OBSERVATIONS
from .study import study_text

# Competition observation -> latent finding kind forced for it.
CLASS_KINDS = {
    "Atelectasis": "atelectasis",
    "Cardiomegaly": "cardiomegaly",
    "Consolidation": "consolidation",
    "Edema": "edema",
    "Pleural Effusion": "effusion",
}
PROBE_PROMPTS = {
    ("laterality", "effusion"): ("left pleural effusion", "right pleural effusion"),
    ("laterality", "consolidation"): ("left lung consolidation", "right lung consolidation"),
    ("negation", "effusion"): ("pleural effusion", "no pleural effusion"),
    ("severity", "effusion"): ("small pleural effusion", "large pleural effusion"),
    ("severity", "pneumothorax"): ("small pneumothorax", "large pneumothorax"),
}


def five_by_n_class(labels: dict) -> Optional[str]:
    """The §1.2 5×N rule on report labels (blank -> 0): exactly one competition
    observation is 1 and every other observation except No Finding is 0 (any -1
    excludes). Returns that observation or None."""
    vals = {o: (0 if labels.get(o) is None else labels[o]) for o in OBSERVATIONS if o != "No Finding"}
    if any(v == -1 for v in vals.values()):
        return None
    pos = [o for o, v in vals.items() if v == 1]
    if len(pos) == 1 and pos[0] in COMPETITION:
        return pos[0]
    return None


def _views(n: int) -> list[str]:
    return ["PA" if j % 2 == 0 else "AP" for j in range(n)]


def _search(seed: int, split: str, index: int, profile: str, constraints: Constraints,
            accept: Callable[[SampleSpec], bool], tags: tuple, max_attempts: int) -> SampleSpec:
    for attempt in range(max_attempts):
        spec = SampleSpec(seed, split, index, profile, attempt, constraints, tags)
        if accept(spec):
            return spec
    raise RuntimeError(f"no acceptable sample for {split}[{index}] ({dict(tags)}) in {max_attempts} attempts")


def five_by_n_specs(seed: int, n_per_class: int, *, split: str = "5xn", profile: str = "mimic",
                    max_attempts: int = 200,
                    text_ok: Optional[Callable[[dict], bool]] = None) -> list[SampleSpec]:
    """Synthetic 5×N: ``5 * n_per_class`` frontal studies whose MIMIC-style report
    labels satisfy :func:`five_by_n_class` for their class, view-balanced within
    each class. Tags: ``class``, ``view``. Index = class position * N + j.

    ``text_ok(sections)``: a further rule on the report's sections that the dataset's
    ``prepare`` applies to candidates (MIMIC-CXR: at least 3 MGCA caption tokens), so that
    every planted study is a candidate there and the 5×N set is complete."""
    specs = []
    for ci, cls in enumerate(COMPETITION):
        for j, view in enumerate(_views(n_per_class)):
            c = Constraints(view=view, force=(FindingRequest(CLASS_KINDS[cls], certainty="definite"),),
                            exclusive=True, clean_text=True)

            def accept(spec, cls=cls):
                _, reps = study_text(spec, styles=("mimic",))
                report = reps["mimic"]
                return five_by_n_class(report.labels) == cls and (text_ok is None or text_ok(report.sections))

            specs.append(_search(seed, split, ci * n_per_class + j, profile, c, accept,
                                 (("class", cls), ("view", view)), max_attempts))
    return specs


def _latent_ok(kind: str, **want):
    def accept(spec: SampleSpec) -> bool:
        lat = sample_latent(spec.seed, spec.split, spec.index, config_for_profile(spec.profile),
                            constraints=spec.constraints, attempt=spec.attempt)
        f = lat.finding(kind)
        return f is not None and all(getattr(f, k) == v for k, v in want.items())
    return accept


def laterality_probe_specs(seed: int, n_per_side: int, *, finding: str = "effusion", split: str = "laterality",
                           profile: str = "mimic") -> list[SampleSpec]:
    """2×N images with a single definite, moderate effusion (or consolidation),
    N on the patient's left and N on the right, views balanced per side.
    Tags: ``side``, ``view``, ``finding``; prompts in :data:`PROBE_PROMPTS`."""
    if finding not in ("effusion", "consolidation"):
        raise ValueError("laterality probe finding must be 'effusion' or 'consolidation'")
    specs = []
    for si, side in enumerate(("left", "right")):
        for j, view in enumerate(_views(n_per_side)):
            req = FindingRequest(finding, side=side, severity="moderate", certainty="definite")
            c = Constraints(view=view, force=(req,), exclusive=True, clean_text=True)
            specs.append(_search(seed, split, si * n_per_side + j, profile, c,
                                 _latent_ok(finding, side=side, severity="moderate"),
                                 (("side", side), ("view", view), ("finding", finding)), 10))
    return specs


def negation_probe_specs(seed: int, n: int, *, split: str = "negation", profile: str = "mimic") -> list[SampleSpec]:
    """N effusion-positive (definite, any side/size; other findings as usual) and
    N effusion-free images (effusion forbidden), views balanced. Tag ``label``
    is ``"1"`` / ``"0"``."""
    specs = []
    for j, view in enumerate(_views(n)):
        c = Constraints(view=view, force=(FindingRequest("effusion", certainty="definite"),), clean_text=True)
        specs.append(SampleSpec(seed, split, j, profile, 0, c, (("label", "1"), ("view", view))))
    for j, view in enumerate(_views(n)):
        c = Constraints(view=view, forbid=frozenset({"effusion"}), clean_text=True)
        specs.append(SampleSpec(seed, split, n + j, profile, 0, c, (("label", "0"), ("view", view))))
    return specs


def severity_probe_specs(seed: int, n: int, *, finding: str = "effusion", split: str = "severity",
                         profile: str = "mimic") -> list[SampleSpec]:
    """N small (mild) and N large (severe) single definite effusions or
    pneumothoraces, sides and views balanced. Tags: ``severity``, ``side``, ``view``."""
    if finding not in ("effusion", "pneumothorax"):
        raise ValueError("severity probe finding must be 'effusion' or 'pneumothorax'")
    specs = []
    for si, sev in enumerate(("mild", "severe")):
        for j in range(n):
            side = ("left", "right")[j % 2]
            view = ("PA", "PA", "AP", "AP")[j % 4]
            req = FindingRequest(finding, side=side, severity=sev, certainty="definite")
            c = Constraints(view=view, force=(req,), exclusive=True, clean_text=True)
            specs.append(SampleSpec(seed, split, si * n + j, profile, 0, c,
                                    (("severity", sev), ("side", side), ("view", view), ("finding", finding))))
    return specs


def natural_specs(seed: int, split: str, count: int, *, profile: str = "mimic", start: int = 0) -> list[SampleSpec]:
    """Unconstrained samples ``start .. start + count - 1`` (RSNA-, Object-CXR-style sets)."""
    return [SampleSpec(seed, split, i, profile) for i in range(start, start + count)]


def balanced_presence_specs(seed: int, split: str, kind: str, n_pos: int, n_neg: int, *,
                            profile: str = "siim", max_scan: int = 200_000) -> list[SampleSpec]:
    """Natural samples scanned in index order, keeping the first ``n_pos`` with the
    finding ``kind`` and the first ``n_neg`` without (SIIM-style 1:1 training set).
    Tag ``label`` = ``"1"`` / ``"0"``; specs are returned in index order."""
    cfg = config_for_profile(profile)
    pos = neg = 0
    out = []
    for i in range(max_scan):
        if pos >= n_pos and neg >= n_neg:
            return out
        has = sample_latent(seed, split, i, cfg).has(kind)
        if has and pos < n_pos:
            pos += 1
            out.append(SampleSpec(seed, split, i, profile, 0, None, (("label", "1"),)))
        elif not has and neg < n_neg:
            neg += 1
            out.append(SampleSpec(seed, split, i, profile, 0, None, (("label", "0"),)))
    if pos >= n_pos and neg >= n_neg:
        return out
    raise RuntimeError(f"only {pos} positives / {neg} negatives for {kind!r} in {max_scan} samples")
