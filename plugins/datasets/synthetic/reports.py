"""Report generator (§4.5): MIMIC-, R2Gen-, IU- and 5×N-style reports.

One *plan* per study (findings sentences and impression items, each a
:class:`Sentence` carrying its template id and asserted labels) is rendered into
four styles:

* ``"mimic"`` – a full MIMIC-CXR report file (``FINAL REPORT`` banner, header
  lines `` NAME:``, body lines wrapped at 79 characters with a leading space) with
  the structural variants of §4.5 (no FINDINGS 12 %, no IMPRESSION 5 %, combined
  ``FINDINGS AND IMPRESSION:`` 3 %, misspelled header 1 %, numbered impression 30 %
  of multi-item impressions, addendum 1 %, empty file 0.5 %, missing file 0.5 %);
* ``"r2gen"`` – the findings paragraph as one string (R2Gen annotation);
* ``"iu"`` – IU X-ray style findings: no headers, 3–6 sentences, ``XXXX`` replacing
  1–2 words in 20 % of reports;
* ``"5xn"`` – the impression only (CheXpert-5×N style).

Labels of a style are the assertions of the sentences present in it, combined by
:func:`.lexicon.combine_labels` (never by running the labeler); they are the
labels of ``sections`` (findings + impression present). ``sections`` holds what a
section parser must recover: for the MIMIC file, the whitespace-normalized text
of each canonical section present (``findings``, ``impression``; a combined
section is ``impression`` as the MIT-LCP synonym table maps it); R2Gen and IU
reports have ``findings`` only, 5×N reports ``impression`` only. Text choices come from ``latent.text_seed`` only (one child
stream per style), so every style is reproducible on its own.
"""

from __future__ import annotations

import re
import string
import textwrap
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .latent import FINDING_KINDS, stable_code
from .lexicon import PROTECTED_WORDS, combine_labels, protected_spans
from .templates import (
    ATSEV_WORDS,
    ATYPE_WORDS,
    CHG_SUFFIX,
    CHG_WORD,
    CHG_WORD_CONSOLIDATION,
    CONS_WORDS,
    COUNT_WORDS,
    DEVICE_IMPRESSIONS,
    DEVICE_SENTENCES,
    GGSEV_WORDS,
    INDICATIONS,
    LEAK_PHRASES,
    LOC_ADJ,
    LOC_IN,
    MALPOSITION_IMPRESSION,
    NEGATION_RATES,
    NORMAL_IMPRESSIONS,
    OBJECT_SENTENCES,
    PATCHY_WORDS,
    PHRASES,
    PTSEV_WORDS,
    SALIENCE,
    SENTENCES,
    SEV_ADVERB,
    SEV_WORDS,
    STATEMENTS,
    SYSTEMS,
    Template,
)

REPORT_STYLES = ("mimic", "r2gen", "iu", "5xn")
DEVICE_ORDER = ("ett", "enteric_tube", "cvc", "pacemaker", "sternotomy", "chest_tube")
# Misspelled headers (synonyms the MIT-LCP parser maps back).
MISSPELLED = {"findings": "FINDNGS", "impression": "IMPRESSON"}


@dataclass(frozen=True)
class Sentence:
    text: str
    template_id: str
    assertions: tuple          # ((observation, value), ...)
    kinds: tuple = ()          # latent kinds the sentence talks about
    role: str = "finding"      # finding | device | object | negation | impression


@dataclass
class Mention:
    """The text view of one finding (after report noise)."""

    kind: str
    side: Optional[str]
    zone: Optional[str]
    severity: str
    certainty: str
    change: str
    params: dict
    flags: frozenset
    finding_id: int
    view: str


@dataclass
class ReportPlan:
    findings: list
    impression: list
    numbered: bool
    indication: str
    mentions: list


@dataclass
class SyntheticReport:
    """One rendered report.

    ``text``: the exact string (file content for MIMIC). ``sections``: canonical
    section name -> whitespace-normalized text a parser must recover.
    ``sentences``: the sentences present, in order. ``labels``: CheXpert-14
    report labels (1 / 0 / -1 / None). ``variant``: structural choices made.
    ``missing``: MIMIC emulation should not write this report file at all.
    """

    style: str
    text: str
    sections: dict
    sentences: tuple
    labels: dict
    template_ids: tuple
    variant: dict = field(default_factory=dict)
    missing: bool = False

    @property
    def findings(self) -> Optional[str]:
        return self.sections.get("findings")

    @property
    def impression(self) -> Optional[str]:
        return self.sections.get("impression")


# ------------------------------------------------------------------ helpers
def _rng(latent, purpose: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([latent.text_seed, stable_code(purpose)])))


def _choice(rng: np.random.Generator, options, weights=None):
    if len(options) == 1:
        return options[0]
    p = None
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        p = w / w.sum()
    return options[int(rng.choice(len(options), p=p))]


def _opposite(side: Optional[str]) -> Optional[str]:
    return {"right": "left", "left": "right"}.get(side, side)


def _flags(kind: str, params: dict, swapped: bool) -> frozenset:
    f = set()
    if kind == "effusion" and any(s.get("subpulmonic") for s in params.get("sides", {}).values()):
        f.add("subpulmonic")
    if kind == "consolidation":
        if params.get("bronchograms"):
            f.add("bronchograms")
        if params.get("silhouette") and not swapped:
            f.add("silhouette")
    if kind == "edema" and params.get("kerley"):
        f.add("kerley")
    if kind == "nodule":
        f.add(params.get("subtype", "nodule"))
        insts = params.get("instances", [])
        f.add("multi" if len(insts) > 1 else "single")
        if any(i.get("spikes") for i in insts):
            f.add("spiculated")
    if kind == "pneumothorax" and params.get("tension"):
        f.add("tension")
    return frozenset(f)


def text_mentions(latent) -> list[Mention]:
    """Findings as the report describes them: omitted ones dropped, the false
    mention added, the swapped side applied."""
    noise = latent.report_noise
    out = []
    found = list(latent.findings)
    if noise.false_positive is not None:
        found.append(noise.false_positive)
    for f in found:
        if f.id in noise.omitted:
            continue
        swapped = noise.swapped is not None and noise.swapped == f.id
        side, zone = (_opposite(f.side), f.zone) if swapped else (f.side, f.zone)
        if zone == "retrocardiac" and side == "right":
            zone = "lower"
        out.append(Mention(f.kind, side, zone, f.severity, f.certainty, f.change, f.params,
                           _flags(f.kind, f.params, swapped), f.id, latent.view))
    return out


def _eligible(t: Template, certainty: str, side, zone, severity, change, view, flags) -> bool:
    return ((t.certainty == "any" or t.certainty == certainty)
            and (t.sides is None or side in t.sides)
            and (t.zones is None or zone in t.zones)
            and (t.severities is None or severity in t.severities)
            and (t.changes is None or change in t.changes)
            and (t.views is None or view in t.views)
            and t.requires <= flags and not (t.excludes & flags))


def _pick_template(rng, templates: list[Template], m: Mention) -> Template:
    ok = [t for t in templates if _eligible(t, m.certainty, m.side, m.zone, m.severity, m.change, m.view, m.flags)]
    if not ok:
        raise LookupError(f"no template for {m.kind} {m.side} {m.zone} {m.severity} {m.certainty} {m.change} "
                          f"{sorted(m.flags)}")
    return _choice(rng, ok, [t.weight for t in ok])


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _slot(name: str, m: Mention, rng) -> str:
    p, sev = m.params, m.severity
    if name == "sev":
        return _choice(rng, SEV_WORDS.get(m.kind, SEV_WORDS["edema"])[sev])
    if name == "sevly":
        return SEV_ADVERB[sev]
    if name == "side":
        return m.side or ""
    if name == "loc":
        return _choice(rng, LOC_IN[(m.side, m.zone)])
    if name == "loc_adj":
        return _choice(rng, LOC_ADJ[(m.side, m.zone)])
    if name == "chg":
        return _choice(rng, CHG_SUFFIX[m.change])
    if name == "chgw":
        table = CHG_WORD_CONSOLIDATION if m.kind == "consolidation" else CHG_WORD
        return table[m.change]
    if name == "n":
        if m.kind == "pneumothorax":
            return str(max(1, round(p.get("w", 0.03) * 40)))
        if m.kind == "nodule":
            return str(max(2, round(2 * max(i["r"] for i in p["instances"]) * 400)))
        if m.kind == "ett":
            return str(max(1, round(p["tip_cm"])))
    if name == "ncm":
        return str(max(1, round(2 * max(i["r"] for i in p["instances"]) * 40)))
    if name == "count":
        return COUNT_WORDS[len(p["instances"])]
    if name == "ord":
        return _ordinal(int(p.get("rib", 4)) + 2)
    if name == "cons":
        return _choice(rng, CONS_WORDS[sev])
    if name == "patchy":
        return _choice(rng, PATCHY_WORDS[sev])
    if name == "atype":
        return _choice(rng, ATYPE_WORDS)
    if name == "atsev":
        return _choice(rng, ATSEV_WORDS[sev])
    if name == "ggsev":
        return _choice(rng, GGSEV_WORDS[sev])
    if name == "ptsev":
        return _choice(rng, PTSEV_WORDS[sev])
    if name == "bigside":
        sides = p.get("sides", {})
        return max(sides, key=lambda s: sides[s]["h"]) if sides else "right"
    if name == "svc":
        dv = p.get("tip_dv", 0.0)
        return "mid SVC" if dv < 0.005 else "low SVC" if dv < 0.025 else "cavoatrial junction"
    raise KeyError(f"unknown slot {name!r}")


_FIELDS = string.Formatter()


def _fill(template: Template, m: Optional[Mention], rng, final_period: bool = True) -> str:
    names = [f for _, f, _, _ in _FIELDS.parse(template.text) if f]
    values = {n: _slot(n, m, rng) for n in dict.fromkeys(names)}
    text = template.text.format(**values)
    text = re.sub(r"\s+", " ", text).strip()
    text = text.replace(" ,", ",").replace(" .", ".")
    return text[:1].upper() + text[1:]


def _sentence(template: Template, m: Optional[Mention], rng, role: str, kinds=()) -> Sentence:
    return Sentence(_fill(template, m, rng), template.id, template.asserts, tuple(kinds), role)


class _DeviceView:
    """Adapter so device templates can use the same slot machinery."""

    def __init__(self, dev, view):
        self.kind, self.side, self.params, self.view = dev.kind, dev.side, dev.params, view
        self.zone, self.severity, self.certainty, self.change = None, "mild", "definite", "none"
        f = set()
        if dev.params.get("malpositioned"):
            f.add("malpositioned")
        if dev.kind == "cvc":
            f.add(dev.params["route"])
        if dev.kind == "pacemaker":
            f.add("two_leads" if dev.params["leads"] == 2 else "one_lead")
        self.flags = frozenset(f)


def _device_sentence(dev, view, rng) -> Sentence:
    dv = _DeviceView(dev, view)
    t = _pick_template(rng, DEVICE_SENTENCES[dev.kind], dv)
    return _sentence(t, dv, rng, "device", (dev.kind,))


def _finding_sentences(m: Mention, rng) -> list[Sentence]:
    t = _pick_template(rng, SENTENCES[m.kind], m)
    out = [_sentence(t, m, rng, "finding", (m.kind,))]
    if m.kind == "cardiomegaly" and m.params.get("ecm") and m.certainty == "definite":
        out.append(_sentence(_choice(rng, SENTENCES["ecm"]), m, rng, "finding", ("cardiomegaly",)))
    return out


def _random_mention(rng, kind: str, view: str) -> Mention:
    """A placeholder mention for temporal negations ("previously seen left ...")."""
    side = _choice(rng, ("right", "left"))
    zone = _choice(rng, ("upper", "middle", "lower"))
    return Mention(kind, side, zone, "mild", "definite", "none", {}, frozenset(), -1, view)


def _system_statements(system: str, kinds, positives: set, wanted: set, rng, view: str,
                       add_generic: bool) -> list[Sentence]:
    cands = [s for s in STATEMENTS if s.system == system and not (s.requires_absent & positives)]
    if positives & kinds:
        cands = [s for s in cands if not s.generic]
    out, used, remaining = [], set(), set(wanted)
    while remaining:
        opts = [s for s in cands if s.covers & remaining and s.template.id not in used]
        if not opts:
            break
        s = _choice(rng, opts, [s.template.weight * len(s.covers & remaining) for s in opts])
        used.add(s.template.id)
        remaining -= s.covers
        kind = next(iter(sorted(s.covers)), "consolidation")
        out.append(_sentence(s.template, _random_mention(rng, kind, view), rng, "negation", tuple(sorted(s.covers))))
    if not out and add_generic and not (positives & kinds):
        gens = [s for s in cands if s.generic]
        if gens:
            s = _choice(rng, gens, [s.template.weight for s in gens])
            out.append(_sentence(s.template, None, rng, "negation", tuple(sorted(s.covers))))
    return out


def _impression_items(mentions: list[Mention], latent, rng) -> list[Sentence]:
    ordered = sorted(mentions, key=lambda m: (SALIENCE.index(m.kind), m.finding_id))[:3]
    items: list[Sentence] = []
    phrases = []
    for m in ordered:
        t = _pick_template(rng, PHRASES[m.kind], m)
        phrases.append((_fill(t, m, rng), t, m))
    if len(phrases) >= 2 and rng.random() < 0.3:
        (p1, t1, m1), (p2, t2, m2) = phrases[0], phrases[1]
        if t1.certainty == "uncertain" and t2.certainty != "uncertain":
            (p1, t1, m1), (p2, t2, m2) = (p2, t2, m2), (p1, t1, m1)
        joiner = _choice(rng, (" with ", " and "))
        text = p1 + joiner + p2[:1].lower() + p2[1:] + "."
        items.append(Sentence(text, f"{t1.id}+{t2.id}", t1.asserts + t2.asserts, (m1.kind, m2.kind), "impression"))
        phrases = phrases[2:]
    for p, t, m in phrases:
        items.append(Sentence(p + ".", t.id, t.asserts, (m.kind,), "impression"))
    if latent.devices and len(ordered) < 3:
        malpos = any(d.params.get("malpositioned") for d in latent.devices)
        t = MALPOSITION_IMPRESSION if malpos else _choice(rng, DEVICE_IMPRESSIONS)
        items.append(_sentence(t, None, rng, "impression", ("devices",)))
    if not ordered:
        items.append(_sentence(_choice(rng, NORMAL_IMPRESSIONS), None, rng, "impression", ()))
    elif {m.kind for m in ordered} <= {"nodule", "pleural_thickening"} and rng.random() < 0.5:
        items.append(_sentence(NORMAL_IMPRESSIONS[0], None, rng, "impression", ()))
    return items


def _indication(latent, mentions, rng) -> str:
    kinds = [m.kind for m in mentions]
    if "chf" in latent.clusters:
        key = "chf"
    elif kinds and kinds[0] in INDICATIONS:
        key = kinds[0]
    elif latent.devices:
        key = "devices"
    else:
        key = next((k for k in kinds if k in INDICATIONS), "default")
    text = _choice(rng, INDICATIONS[key])
    leak = [LEAK_PHRASES[k] for k in kinds if k in LEAK_PHRASES]
    if leak and rng.random() < 0.3:
        text += " // " + leak[0]
    return text


def plan_report(latent) -> ReportPlan:
    """Content plan of a study's report (findings sentences, impression items)."""
    rng = _rng(latent, "plan")
    mentions = text_mentions(latent)
    mentions.sort(key=lambda m: (FINDING_KINDS.index(m.kind), m.finding_id))
    positives = {m.kind for m in mentions}
    wanted = {k for k in NEGATION_RATES if k not in positives and rng.random() < NEGATION_RATES[k]}
    sentences: list[Sentence] = []
    for dev in sorted(latent.devices, key=lambda d: DEVICE_ORDER.index(d.kind)):
        sentences.append(_device_sentence(dev, latent.view, rng))
    lungs_pleura_clear = not (positives & (SYSTEMS[0][1] | SYSTEMS[1][1]))
    combined = lungs_pleura_clear and rng.random() < 0.3
    generic_p = {"lungs": 1.0, "pleura": 0.5, "heart": 0.9, "bones": 0.5}
    for system, kinds in SYSTEMS:
        for m in mentions:
            if m.kind in kinds:
                sentences.extend(_finding_sentences(m, rng))
        if combined and system == "lungs":
            lp = [s for s in STATEMENTS if s.template.id.startswith("neg.lp")]
            s = _choice(rng, lp)
            sentences.append(_sentence(s.template, None, rng, "negation", tuple(sorted(s.covers))))
            wanted -= s.covers
        if combined and system in ("lungs", "pleura"):
            add_generic = False
        else:
            add_generic = rng.random() < generic_p[system]
        sentences.extend(_system_statements(system, kinds, positives, wanted & kinds, rng, latent.view, add_generic))
    for obj in latent.foreign_objects[:2]:
        if rng.random() < 0.6:
            side = obj.params.get("side", "right")
            t = _choice(rng, OBJECT_SENTENCES[obj.kind])
            sentences.append(Sentence(_fill(t, _PlainSide(side), rng), t.id, (), (obj.kind,), "object"))
    impression = _impression_items(mentions, latent, rng)
    numbered = len(impression) >= 2 and rng.random() < 0.3
    return ReportPlan(sentences, impression, numbered, _indication(latent, mentions, rng), mentions)


class _PlainSide:
    """Slot source for foreign-object sentences (only ``{side}``)."""

    def __init__(self, side):
        self.kind, self.side, self.params, self.severity = "object", side, {}, "mild"


# ------------------------------------------------------------------- styles
def _join(sentences) -> str:
    return " ".join(s.text for s in sentences)


def _impression_text(items, numbered: bool) -> str:
    if numbered:
        return " ".join(f"{i}. {s.text}" for i, s in enumerate(items, start=1))
    return _join(items)


def _labels(sentences) -> dict:
    pairs = [a for s in sentences for a in s.assertions]
    return combine_labels(pairs)


def _wrap(paragraph: str) -> list[str]:
    return [" " + line for line in textwrap.wrap(paragraph, width=78, break_long_words=False,
                                                break_on_hyphens=False)]


def _mimic(latent, plan: ReportPlan) -> SyntheticReport:
    rng = _rng(latent, "mimic")
    u = rng.random(8)
    variant = {"empty": bool(u[0] < 0.005), "missing": bool(0.005 <= u[0] < 0.01)}
    if variant["empty"] or variant["missing"]:
        return SyntheticReport("mimic", "", {}, (), combine_labels([]), (), variant, missing=variant["missing"])
    combined = bool(u[1] < 0.03)
    no_findings = (not combined) and bool(u[2] < 0.12)
    no_impression = (not combined) and (not no_findings) and bool(u[3] < 0.05)
    misspelled = bool(u[4] < 0.01)
    addendum = bool(u[5] < 0.01)
    variant.update(combined=combined, no_findings=no_findings, no_impression=no_impression,
                   misspelled=misspelled, addendum=addendum, numbered=plan.numbered)

    lines: list[str] = []
    if addendum:
        lines += [" " * 33 + "ADDENDUM",
                  " ADDENDUM:  The findings were discussed with the referring clinician by",
                  " telephone on ___.",
                  " " + "_" * 78]
    lines.append(" " * 33 + "FINAL REPORT")
    two_views = latent.has_lateral
    if latent.view == "AP":
        exam, tech = "CHEST (PORTABLE AP)", "Portable AP chest radiograph."
    elif two_views:
        exam, tech = "CHEST (PA AND LAT)", "Chest PA and lateral."
    else:
        exam, tech = "CHEST (PA)", "Single PA view of the chest."
    comparison = "___" if any(m.change != "none" for m in plan.mentions) or rng.random() < 0.5 else "None."
    for header, value in (("EXAMINATION", exam), ("INDICATION", f"___ year old {latent.sex} with {plan.indication}"),
                          ("TECHNIQUE", tech), ("COMPARISON", comparison)):
        lines += textwrap.wrap(f"{header}:  {value}", width=78, initial_indent=" ", subsequent_indent=" ",
                               break_long_words=False, break_on_hyphens=False)
        lines.append(" ")

    present: list[Sentence] = []
    sections: dict[str, str] = {}
    blocks: list[tuple[str, list[str]]] = []

    def header(name: str) -> str:
        return MISSPELLED[name] if misspelled and rng.random() < 0.5 else name.upper()

    imp_text = _impression_text(plan.impression, plan.numbered)
    imp_lines: list[str] = []
    if plan.numbered:
        for i, s in enumerate(plan.impression, start=1):
            imp_lines += _wrap(f"{i}. {s.text}")
    else:
        imp_lines = _wrap(imp_text)
    if combined:
        text = _join(plan.findings) + " " + imp_text
        blocks.append(("FINDINGS AND IMPRESSION", _wrap(_join(plan.findings)) + imp_lines))
        sections["impression"] = text.strip()
        present += plan.findings + plan.impression
    else:
        if not no_findings and plan.findings:
            blocks.append((header("findings"), _wrap(_join(plan.findings))))
            sections["findings"] = _join(plan.findings)
            present += plan.findings
        if not no_impression:
            blocks.append((header("impression"), imp_lines))
            sections["impression"] = imp_text
            present += plan.impression
    for name, body in blocks:
        lines.append(f" {name}:")
        lines.append(" ")
        lines += body
        lines.append(" ")
    text = "\n".join(lines) + "\n"
    variant["headers"] = [name for name, _ in blocks]
    return SyntheticReport("mimic", text, sections, tuple(present), _labels(present),
                           tuple(s.template_id for s in present), variant)


def _r2gen(latent, plan: ReportPlan) -> SyntheticReport:
    text = _join(plan.findings)
    return SyntheticReport("r2gen", text, {"findings": text}, tuple(plan.findings), _labels(plan.findings),
                           tuple(s.template_id for s in plan.findings))


def _xxxx(sentences: list[Sentence], rng) -> tuple[list[Sentence], int]:
    """Replace 1–2 unprotected words (never lexicon mentions, cues, laterality or
    anatomy words, numbers) with ``XXXX``."""
    candidates = []
    for i, s in enumerate(sentences):
        low = s.text.lower()
        spans = protected_spans(low)
        for m in re.finditer(r"[A-Za-z][A-Za-z-]{2,}", s.text):
            word = m.group(0).lower()
            if word in PROTECTED_WORDS or any(m.start() < e and b < m.end() for b, e in spans):
                continue
            candidates.append((i, m.start(), m.end()))
    if not candidates:
        return sentences, 0
    n = min(len(candidates), int(rng.integers(1, 3)))
    picks = sorted((candidates[int(j)] for j in rng.choice(len(candidates), size=n, replace=False)),
                   key=lambda c: (c[0], -c[1]))
    out = list(sentences)
    for i, a, b in picks:
        s = out[i]
        out[i] = Sentence(s.text[:a] + "XXXX" + s.text[b:], s.template_id, s.assertions, s.kinds, s.role)
    return out, n


def _iu(latent, plan: ReportPlan) -> SyntheticReport:
    rng = _rng(latent, "iu")
    content = [s for s in plan.findings if s.role != "negation"]
    normals = [s for s in plan.findings if s.role == "negation"]
    keep = max(0, 6 - len(content))
    chosen = set(id(s) for s in normals[:keep])
    sentences = [s for s in plan.findings if s.role != "negation" or id(s) in chosen]
    if len(sentences) < 3:
        positives = {m.kind for m in plan.mentions}
        used = {s.template_id for s in sentences}
        extra = [s for s in STATEMENTS if s.generic and not (s.requires_absent & positives)
                 and s.template.id not in used and s.template.id in ("neg.h6", "neg.h9", "neg.b2", "neg.l1",
                                                                     "neg.p7", "neg.h4")]
        while len(sentences) < 3 and extra:
            st = extra.pop(int(rng.integers(0, len(extra))))
            sentences.append(_sentence(st.template, None, rng, "negation", tuple(sorted(st.covers))))
    n_x = 0
    if rng.random() < 0.2:
        sentences, n_x = _xxxx(sentences, rng)
    numbered = bool(rng.random() < 0.05)
    if numbered:
        text = " ".join(f"{i}. {s.text}" for i, s in enumerate(sentences, start=1))
    else:
        text = _join(sentences)
    return SyntheticReport("iu", text, {"findings": text}, tuple(sentences),
                           _labels(sentences), tuple(s.template_id for s in sentences),
                           {"xxxx": n_x, "numbered": numbered})


def _five_by_n(latent, plan: ReportPlan) -> SyntheticReport:
    text = _impression_text(plan.impression, plan.numbered)
    return SyntheticReport("5xn", text, {"impression": text}, tuple(plan.impression), _labels(plan.impression),
                           tuple(s.template_id for s in plan.impression), {"numbered": plan.numbered})


_STYLE_FUNCS = {"mimic": _mimic, "r2gen": _r2gen, "iu": _iu, "5xn": _five_by_n}


def generate_reports(latent, styles=REPORT_STYLES) -> dict[str, SyntheticReport]:
    """Reports of a study in the requested styles (each independent of the others)."""
    plan = plan_report(latent)
    out = {}
    for style in styles:
        if style not in _STYLE_FUNCS:
            raise ValueError(f"unknown report style {style!r}; expected one of {REPORT_STYLES}")
        out[style] = _STYLE_FUNCS[style](latent, plan)
    return out


def generate_report(latent, style: str = "mimic") -> SyntheticReport:
    return generate_reports(latent, (style,))[style]


__all__ = ["REPORT_STYLES", "ReportPlan", "Sentence", "SyntheticReport", "generate_report", "generate_reports",
           "plan_report", "text_mentions"]
