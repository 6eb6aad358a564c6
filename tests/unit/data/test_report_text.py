"""Sentence spans and section extraction on hand-written reports."""

import pytest

from place_bench.data.report_text import (
    ReportSections,
    normalize_section_name,
    parse_iu_xray_report,
    parse_mimic_report,
    parse_openi_xml,
    sentence_char_spans,
    split_sentences,
)

# ---------------------------------------------------------------------------- sentences


def test_spans_are_offsets_into_the_original_string():
    text = "  Heart normal.  Lungs clear.\n"
    #       0123456789012345678901234567 8
    assert sentence_char_spans(text) == [(2, 15), (17, 29)]


def test_single_sentence_without_final_period():
    assert sentence_char_spans("No acute process") == [(0, 16)]
    assert split_sentences("  No acute process \n") == ["No acute process"]


@pytest.mark.parametrize("text", ["", "   ", "\n \n", "___", " ___ . ___ "])
def test_empty_and_content_free_texts_give_no_sentences(text):
    assert sentence_char_spans(text) == []


def test_decimals_and_units_do_not_cut():
    assert split_sentences("Nodule measures 2.5 cm. No effusion") == [
        "Nodule measures 2.5 cm.",
        "No effusion",
    ]


def test_abbreviations():
    text = (
        "Opacity e.g. atelectasis vs. consolidation, i.e. nonspecific. "
        "Dr. ___ was paged at 10:40 a.m. on ___. Called at 3 p.m. The AP view is limited."
    )
    assert split_sentences(text) == [
        "Opacity e.g. atelectasis vs. consolidation, i.e. nonspecific.",
        "Dr. ___ was paged at 10:40 a.m. on ___.",
        "Called at 3 p.m.",
        "The AP view is limited.",
    ]


def test_numbered_list_on_separate_lines_with_wrapped_line():
    text = " 1. No acute process.\n 2. Small left\n pleural effusion.\n"
    spans = sentence_char_spans(text)
    assert [text[a:b] for a, b in spans] == ["No acute process.", "Small left\n pleural effusion."]
    assert spans[0] == (4, 21)


def test_numbered_list_inline_without_periods():
    assert split_sentences("1. No effusion 2. Mild edema 3. Cardiomegaly.") == [
        "No effusion",
        "Mild edema",
        "Cardiomegaly.",
    ]


def test_number_ending_a_sentence_is_not_an_enumerator():
    assert split_sentences("Heart grade 2. Lungs clear.") == ["Heart grade 2.", "Lungs clear."]


def test_newlines_blank_lines_and_separator_lines():
    # a single newline is a wrapped line; a blank line or a line of underscores always cuts
    text = "There is no\n focal consolidation\n \n Heart normal\n______________\nAddendum text"
    assert split_sentences(text) == [
        "There is no\n focal consolidation",
        "Heart normal",
        "Addendum text",
    ]


def test_deidentification_blanks_and_lowercase_r2gen_style():
    assert split_sentences("___. Compared to ___ the XXXX is stable.") == [
        "Compared to ___ the XXXX is stable."
    ]
    assert split_sentences("the heart is normal . the lungs are clear .") == [
        "the heart is normal .",
        "the lungs are clear .",
    ]


def test_question_exclamation_and_closing_brackets():
    assert split_sentences('Effusion? Yes! (Small.) "Stable." End') == [
        "Effusion?",
        "Yes!",
        "(Small.)",
        '"Stable."',
        "End",
    ]


def test_spans_are_trimmed_sorted_and_disjoint():
    text = " 1. A b.\n 2. C d e.  \n\n F g h? I j"
    spans = sentence_char_spans(text)
    assert spans == sorted(spans)
    for (a, b), (c, _) in zip(spans, spans[1:]):
        assert b <= c
    for a, b in spans:
        assert text[a:b] == text[a:b].strip() and a < b


def test_sentence_spans_reject_non_strings():
    with pytest.raises(TypeError):
        sentence_char_spans(None)


# ---------------------------------------------------------------------------- MIMIC sections

MIMIC_REPORT = (
    "                                 FINAL REPORT\n"
    " EXAMINATION:  CHEST (PA AND LAT)\n"
    " \n"
    " INDICATION:  ___ year old woman with ?pleural effusion\n"
    " \n"
    " COMPARISON:  ___\n"
    " \n"
    " FINDINGS:\n"
    " \n"
    " PA and lateral views of the chest were provided.  There is a small left\n"
    " pleural effusion.  No pneumothorax.\n"
    " \n"
    " IMPRESSION:\n"
    " \n"
    " 1. Small left pleural effusion.\n"
    " 2. No pneumothorax.\n"
)


def test_mimic_findings_and_impression():
    s = parse_mimic_report(MIMIC_REPORT)
    assert s.findings == (
        "PA and lateral views of the chest were provided.  There is a small left\n"
        " pleural effusion.  No pneumothorax."
    )
    assert s.impression == "1. Small left pleural effusion.\n 2. No pneumothorax."
    assert s.other == {
        "preamble": "FINAL REPORT",
        "examination": "CHEST (PA AND LAT)",
        "indication": "___ year old woman with ?pleural effusion",
        "comparison": "___",
    }
    assert s.conclusion == s.impression
    for name, (a, b) in s.spans.items():
        expected = {"findings": s.findings, "impression": s.impression}.get(name) or s.other[name]
        assert MIMIC_REPORT[a:b] == expected
    assert split_sentences(s.impression) == ["Small left pleural effusion.", "No pneumothorax."]


def test_mimic_header_variants_and_last_section_wins():
    text = (
        " FINDINGS:  Lungs clear.\n"
        " IMPRESSON:  No acute process.\n"
        " FINDINGS AND IMPRESSION:  Unchanged.\n"
        " PORTABLE AP CHEST:  Tube in place.\n"
    )
    s = parse_mimic_report(text)
    assert s.impression == "Unchanged."  # typo + combined header both mean impression
    assert s.findings == "Tube in place."  # a view-phrase header means findings
    assert [x.raw_name for x in s.sections] == [
        "FINDINGS", "IMPRESSON", "FINDINGS AND IMPRESSION", "PORTABLE AP CHEST",
    ]


def test_inline_capitals_with_colon_do_not_split():
    s = parse_mimic_report(" FINDINGS:  Compared to the CT: no change.\n IMPRESSION:  Stable.")
    assert s.findings == "Compared to the CT: no change."
    assert s.impression == "Stable."


def test_empty_findings_dropped_and_header_on_next_line():
    s = parse_mimic_report(" FINDINGS:\n IMPRESSION:  No acute process.")
    assert s.findings == ""
    assert s.impression == "No acute process."
    assert "findings" not in s.spans


def test_last_paragraph_fallback_without_findings_or_impression():
    text = (
        " EXAMINATION:  CHEST\n \n COMPARISON:  ___\n \n The lungs are clear.\n No effusion."
    )
    s = parse_mimic_report(text)
    assert (s.findings, s.impression) == ("", "")
    assert s.other["last_paragraph"] == "The lungs are clear.\n No effusion."
    assert s.other["comparison"].startswith("___")
    assert s.conclusion == "The lungs are clear.\n No effusion."


def test_report_without_headers_is_full_report():
    s = parse_mimic_report("The lungs are clear.")
    assert s.other == {"full report": "The lungs are clear."}
    assert s.findings == s.impression == "" and s.conclusion == ""


@pytest.mark.parametrize("text", [None, "", "   \n \n  ", " FINDINGS:\n \n IMPRESSION:\n"])
def test_empty_reports_give_empty_sections(text):
    s = parse_mimic_report(text)
    assert s.findings == "" and s.impression == "" and s.other == {}
    assert isinstance(s, ReportSections)


@pytest.mark.parametrize(
    "raw, name",
    [
        ("FINDINGS", "findings"),
        ("Findngs", "findings"),
        ("CONCLUSION", "impression"),
        ("FINDINGS/IMPRESSION", "impression"),
        ("REASON FOR EXAMINATION", "indication"),
        ("REFERENCE EXAM", "comparison"),
        ("CLINICAL  HISTORY", "history"),
        ("PA AND LATERAL VIEWS", "findings"),
        ("WET READ", "wet read"),
        ("ADDENDUM #2", "addendum"),
    ],
)
def test_normalize_section_name(raw, name):
    assert normalize_section_name(raw) == name


@pytest.mark.parametrize("seed", range(20))
def test_parser_never_crashes_on_odd_text(seed):
    import random

    rng = random.Random(seed)
    alphabet = "AB :\n _.1()/,-FINDINGSIMPRESSION"
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
    s = parse_mimic_report(text)
    for name, (a, b) in s.spans.items():
        assert text[a:b] in (s.findings, s.impression, *s.other.values())
    sentence_char_spans(text)


# ---------------------------------------------------------------------------- IU X-ray

OPENI_XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation>
  <MedlineCitation><Article><Abstract>
    <AbstractText Label="COMPARISON">None.</AbstractText>
    <AbstractText Label="INDICATION">XXXX-year-old male, chest pain.</AbstractText>
    <AbstractText Label="FINDINGS">The heart is normal in size. No XXXX effusion.</AbstractText>
    <AbstractText Label="IMPRESSION"/>
  </Abstract></Article></MedlineCitation>
  <MeSH><major>normal</major></MeSH>
</eCitation>
"""


def test_openi_xml_sections():
    s = parse_openi_xml(OPENI_XML)
    assert s.findings == "The heart is normal in size. No XXXX effusion."
    assert s.impression == ""
    assert s.other == {"comparison": "None.", "indication": "XXXX-year-old male, chest pain."}
    assert s.spans == {}
    assert parse_iu_xray_report(OPENI_XML.encode()) == s


def test_openi_malformed_xml_raises_value_error():
    with pytest.raises(ValueError, match="not well-formed"):
        parse_openi_xml("<eCitation><AbstractText>")


def test_iu_plain_text():
    s = parse_iu_xray_report("the heart is normal . no XXXX .")
    assert s.findings == "the heart is normal . no XXXX ."
    s = parse_iu_xray_report("FINDINGS: Heart normal. IMPRESSION: Normal chest.")
    assert (s.findings, s.impression) == ("Heart normal.", "Normal chest.")
    assert parse_iu_xray_report("") == ReportSections()
    assert parse_iu_xray_report(None) == ReportSections()
