"""Report generator (§4.5): layout, recoverable sections, labeler agreement,
laterality, negation balance, styles."""

import re
from collections import Counter

import numpy as np
import pytest

from place_bench.plugins.datasets.synthetic.labeler import label_sections, label_text, split_sentences
from place_bench.plugins.datasets.synthetic.latent import (
    Constraints,
    FindingRequest,
    SampleSpec,
    sample_latent,
)
from place_bench.plugins.datasets.synthetic.lexicon import combine_labels
from place_bench.plugins.datasets.synthetic.reports import (
    Mention,
    generate_reports,
    plan_report,
    _fill,
)
from place_bench.plugins.datasets.synthetic.study import study_text
from place_bench.plugins.datasets.synthetic.templates import (
    DEVICE_SENTENCES,
    GLORIA_PHRASES,
    LOC_IN,
    NORMAL_IMPRESSIONS,
    PHRASES,
    SENTENCES,
    STATEMENTS,
)

N_STUDIES = 700


@pytest.fixture(scope="module")
def corpus():
    """Latents and reports of several profiles (text only, no pixels)."""
    out = []
    for profile, n in (("mimic", N_STUDIES), ("covidx", 150), ("object_cxr", 100), ("iu", 100)):
        for i in range(n):
            out.append(study_text(SampleSpec(21, "train", i, profile)))
    return out


# An independent MIT-LCP-style section splitter: a header is newline, one space,
# a run of capitals / spaces / ()/,- and a colon.
HEADER = re.compile(r"\n ([A-Z][A-Z ()/,-]*):\s")
CANONICAL = {"FINDINGS": "findings", "FINDNGS": "findings", "IMPRESSION": "impression",
             "IMPRESSON": "impression", "FINDINGS AND IMPRESSION": "impression"}


def parse_sections(text):
    out = {}
    heads = list(HEADER.finditer(text))
    for i, h in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        name = CANONICAL.get(h.group(1))
        if name:
            out[name] = " ".join(text[h.end():end].split())
    return out


def test_mimic_layout(corpus):
    seen = Counter()
    for _, reps in corpus:
        r = reps["mimic"]
        if not r.text:
            seen["empty_or_missing"] += 1
            continue
        lines = r.text.split("\n")
        assert lines[-1] == ""
        for line in lines[:-1]:
            assert len(line) <= 79, line
            assert line.startswith(" "), line
        banner = [i for i, line in enumerate(lines) if line.strip() == "FINAL REPORT"]
        assert len(banner) == 1 and lines[banner[0]].startswith(" " * 20)
        if r.variant["addendum"]:
            seen["addendum"] += 1
            assert lines[banner[0] - 1] == " " + "_" * 78
        headers = [m.group(1) for m in HEADER.finditer(r.text)]
        assert headers[headers.index("EXAMINATION"):][:4] == ["EXAMINATION", "INDICATION", "TECHNIQUE",
                                                               "COMPARISON"]
        for i, line in enumerate(lines):
            if re.fullmatch(r" (FINDINGS|IMPRESSION|FINDINGS AND IMPRESSION|FINDNGS|IMPRESSON):", line):
                assert lines[i + 1] == " "
        for k in ("combined", "no_findings", "no_impression", "misspelled", "numbered"):
            seen[k] += bool(r.variant[k])
    n = len(corpus)
    assert 0.06 < seen["no_findings"] / n < 0.18
    assert 0.01 < seen["no_impression"] / n < 0.10
    assert 0.005 < seen["combined"] / n < 0.07
    assert seen["numbered"] > 0


def test_sections_are_recoverable(corpus):
    kinds = Counter()
    for _, reps in corpus:
        r = reps["mimic"]
        assert parse_sections(r.text) == r.sections
        kinds.update(r.sections.keys())
        # Sections hold exactly the sentences the labels come from.
        joined = " ".join(r.sections[k] for k in ("findings", "impression") if k in r.sections)
        for s in r.sentences:
            assert s.text in joined
    assert kinds["findings"] > 0 and kinds["impression"] > 0


@pytest.mark.parametrize("style", ["mimic", "r2gen", "iu", "5xn"])
def test_labeler_agrees_with_generated_labels(corpus, style):
    for _, reps in corpus:
        r = reps[style]
        got = label_sections(r.sections)
        assert got == r.labels, (r.text, {k: (got[k], r.labels[k]) for k in got if got[k] != r.labels[k]})
        if style != "mimic":
            assert label_text(r.text) == r.labels
        for s in r.sentences:
            assert label_text(s.text) == combine_labels(s.assertions), s.text


GENERIC_PARAMS = {
    "w": 0.05, "instances": [{"r": 0.01, "spikes": []}, {"r": 0.012, "spikes": []}], "rib": 3,
    "sides": {"right": {"h": 0.2}, "left": {"h": 0.3}}, "tip_cm": 4.2, "tip_dv": 0.01, "route": "right_ij",
}


def _mention_for(kind, t):
    side = sorted(t.sides)[0] if t.sides else ("bilateral" if kind in ("edema", "ground_glass") else "right")
    zone = sorted(t.zones)[0] if t.zones else "lower"
    if side == "right" and zone == "retrocardiac":
        side = "left"
    params = dict(GENERIC_PARAMS)
    if "single" in t.requires:
        params["instances"] = params["instances"][:1]
    cert = "definite" if t.certainty in ("definite", "any") else "uncertain"
    sev = sorted(t.severities)[0] if t.severities else "moderate"
    chg = sorted(t.changes)[0] if t.changes else "stable"
    view = sorted(t.views)[0] if t.views else "PA"
    return Mention(kind, side, zone, sev, cert, chg, params, t.requires, 0, view)


def test_every_template_asserts_what_the_labeler_reads():
    rng = np.random.default_rng(0)
    inventory = [(k, t) for k, ts in {**SENTENCES, **DEVICE_SENTENCES}.items() for t in ts]
    inventory += [(k, t) for k, ts in PHRASES.items() for t in ts]
    inventory += [("consolidation", s.template) for s in STATEMENTS]
    inventory += [("none", t) for t in NORMAL_IMPRESSIONS]
    for kind, t in inventory:
        for _ in range(3):  # several slot draws per template
            text = _fill(t, _mention_for(kind, t), rng)
            assert label_text(text) == combine_labels(t.asserts), (t.id, text)


def test_gloria_vocabulary_in_context():
    rng = np.random.default_rng(1)
    filled = [_fill(t, _mention_for(k, t), rng) for k, ts in SENTENCES.items() for t in ts for _ in range(20)]
    corpus_text = " ".join(filled).lower() + " " + " ".join(t.text.lower() for ts in SENTENCES.values() for t in ts)
    for phrase in GLORIA_PHRASES:
        assert phrase in corpus_text, phrase
    locs = {"at the " + loc for locs in LOC_IN.values() for loc in locs}
    for loc in ("at the left lower lobe", "at the right lower lobe", "at the left upper lobe",
                "at the right upper lobe", "at the right lung base", "at the left lung base"):
        assert loc in locs
    assert "at the {loc}" in corpus_text


SIDE_WORDS = {"right": re.compile(r"\bright\b"), "left": re.compile(r"\bleft\b")}


@pytest.mark.parametrize("kind", ["effusion", "consolidation", "pneumothorax", "nodule", "rib_fracture",
                                  "pleural_thickening", "atelectasis"])
def test_laterality_in_text_matches_the_latent(kind):
    for side in ("right", "left"):
        for i in range(12):
            c = Constraints(force=(FindingRequest(kind, side=side),), exclusive=True, clean_text=True)
            lat = sample_latent(8, "lat", i, constraints=c)
            plan = plan_report(lat)
            about = [s for s in plan.findings + plan.impression if kind in s.kinds]
            assert about
            other = "left" if side == "right" else "right"
            for s in about:
                assert not SIDE_WORDS[other].search(s.text.lower()), s.text
            # The findings sentence names the side (impression phrases may omit it).
            low = " ".join(s.text.lower() for s in about if s.role == "finding")
            implied = side == "left" and ("lingula" in low or "retrocardiac" in low)
            assert SIDE_WORDS[side].search(low) or implied, low


def test_report_noise_is_text_only_and_visible_in_text():
    c = Constraints(force=(FindingRequest("effusion", side="right", certainty="definite"),), exclusive=True)
    lat = sample_latent(0, "noise", 0, constraints=c)
    lat.report_noise.swapped = lat.findings[0].id
    about = [s for s in plan_report(lat).findings if "effusion" in s.kinds]
    assert about and all(not SIDE_WORDS["right"].search(s.text.lower()) for s in about)
    lat.report_noise.swapped = None
    lat.report_noise.omitted = [lat.findings[0].id]
    reps = generate_reports(lat)
    assert reps["r2gen"].labels["Pleural Effusion"] in (0, None)
    assert not any("effusion" in s.kinds for s in plan_report(lat).findings if s.role == "finding")


def test_noise_rates(corpus):
    lats = [lat for lat, _ in corpus[:N_STUDIES]]
    present = sum(len(lat.findings) for lat in lats)
    omitted = sum(len(lat.report_noise.omitted) for lat in lats)
    assert 0.01 < omitted / present < 0.12


@pytest.mark.parametrize("obs", ["Pleural Effusion", "Pneumothorax", "Consolidation"])
def test_pathology_words_more_often_negated_than_affirmed(corpus, obs):
    neg = pos = 0
    for _, reps in corpus[:N_STUDIES]:
        for s in reps["r2gen"].sentences:
            v = label_text(s.text)[obs]
            neg += v == 0
            pos += v == 1
    assert neg > pos > 0


def test_impressions(corpus):
    normal_texts = {t.text for t in NORMAL_IMPRESSIONS}
    multi = numbered = 0
    for lat, reps in corpus[:N_STUDIES]:
        plan = plan_report(lat)
        kinds = [k for s in plan.impression for k in s.kinds if k not in ("devices",)]
        assert len(kinds) <= 3
        if not plan.mentions and not lat.devices:
            assert [s.text for s in plan.impression][0] in normal_texts
        if len(plan.impression) >= 2:
            multi += 1
            numbered += plan.numbered
        assert reps["5xn"].text.replace("1. ", "").split(". ")[0].rstrip(".") in " ".join(
            s.text for s in plan.impression)
    assert 0.12 < numbered / multi < 0.5


def test_iu_style(corpus):
    xxxx = 0
    iu = [reps["iu"] for _, reps in corpus]
    for r in iu:
        assert not re.search(r"(^|\n) ?[A-Z][A-Z ]+:", r.text)
        n = len(split_sentences(re.sub(r"\b\d+\. ", "", r.text)))
        n_template = sum(len(split_sentences(s.text)) for s in r.sentences)
        assert n == n_template
        assert 3 <= len(r.sentences) <= 6 or len([s for s in r.sentences if s.role != "negation"]) >= 6
        xxxx += "XXXX" in r.text
        assert r.text.count("XXXX") <= 2
    assert 0.1 < xxxx / len(iu) < 0.3


def test_styles_are_deterministic_and_independent():
    for i in range(20):
        lat = sample_latent(4, "train", i)
        all_styles = generate_reports(lat)
        again = generate_reports(lat)
        for style in ("mimic", "r2gen", "iu", "5xn"):
            assert again[style].text == all_styles[style].text
            assert generate_reports(lat, (style,))[style].text == all_styles[style].text
        assert all_styles["r2gen"].text == plan_report(lat).findings[0].text + "".join(
            " " + s.text for s in plan_report(lat).findings[1:])
