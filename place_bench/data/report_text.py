"""Radiology report text: sentence spans and section extraction.

Two jobs, both pure functions of a string:

* **Sentences** -- :func:`sentence_char_spans` cuts a report (or one section of it) into sentences
  and returns half-open character spans ``[start, end)`` into the *original* string, so callers can
  keep sentence boundaries aligned with the raw text (e.g. for sentence-level alignment losses).
  :func:`split_sentences` returns the corresponding substrings.
* **Sections** -- :func:`parse_mimic_report` extracts FINDINGS / IMPRESSION (and the other
  sections) from a MIMIC-CXR free-text report following the behaviour of the MIT-LCP section
  parser described in datasets.md section 1.1; :func:`parse_openi_xml` and
  :func:`parse_iu_xray_report` do the same for IU X-ray (OpenI) reports (section 1.7).

Nothing here lower-cases, tokenizes or otherwise rewrites text: every returned string is a
whitespace-trimmed slice of the input. Caption building (impression + findings, MGCA token
filters) belongs to the caller.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

__all__ = [
    "ReportSections",
    "Section",
    "normalize_section_name",
    "parse_iu_xray_report",
    "parse_mimic_report",
    "parse_openi_xml",
    "sentence_char_spans",
    "split_sentences",
]

# --------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------

# Words whose trailing period never ends a sentence (compared lower-cased, without the final dot).
_NEVER_FINAL = frozenset(
    {"e.g", "i.e", "vs", "approx", "appr", "dr", "drs", "mr", "mrs", "ms", "cf", "fig", "pt",
     "resp", "incl", "esp", "eg", "ie", "viz"}
)
# Dotted forms that end a sentence only when followed by a capital letter or the end of the text
# ("... at 10:40 a.m. The ..." vs "... at 10:40 a.m. on ___").  Any other dotted acronym
# ("A.P.", "p.o.") is treated the same way.
_CONDITIONAL_FINAL = frozenset({"a.m", "p.m"})
_DOTTED_ACRONYM = re.compile(r"^[A-Za-z](?:\.[A-Za-z])+$")
_WORD_BEFORE = re.compile(r"([A-Za-z]+(?:\.[A-Za-z]+)*)$")

# A run of terminators, optional closing quotes/brackets, then whitespace or the end of the text.
_TERMINATOR = re.compile(r"[.!?]+[\"')\]]*(?=\s|\Z)")
# A list enumerator "3." or "3)" standing alone as a token and followed by whitespace.
_ENUMERATOR = re.compile(r"(?<!\S)(\d{1,2})[.)](?=\s)")
_LEADING_ENUMERATOR = re.compile(r"\d{1,2}[.)]\s+")
# Hard breaks: a blank line; a line made only of underscores (MIMIC addendum separator, cut on
# both sides); a new line that starts with a list enumerator or an ALL-CAPS "HEADER:".
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_UNDERSCORE_LINE = re.compile(r"(?m)^[^\S\n]*_{3,}[^\S\n]*$")
_NEWLINE_BEFORE_ITEM = re.compile(r"\n(?=[^\S\n]*(?:\d{1,2}[.)]\s|[A-Z]{2}[A-Z ()/,-]*:))")


def sentence_char_spans(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences; return half-open ``(start, end)`` offsets into ``text``.

    Contract:

    * spans are sorted, non-overlapping, and ``text[start:end]`` has no leading or trailing
      whitespace; spans whose text contains no letter or digit (e.g. a lone ``___`` blank or a
      line of underscores) are skipped; an empty or all-whitespace text gives ``[]``;
    * a sentence ends after a run of ``.``, ``!`` or ``?`` (plus closing quotes/brackets) that is
      followed by whitespace or the end of the text, so decimals ("2.5 cm") and in-word dots
      never cut; the final sentence needs no terminator;
    * a period after an abbreviation ("e.g.", "i.e.", "vs.", "approx.", "Dr.", ...) never cuts;
      after "a.m.", "p.m." or any dotted acronym ("A.P.") it cuts only when the next
      non-space character is an upper-case letter or the text ends;
    * a single newline is ordinary whitespace (MIMIC wraps lines at 79 characters); a blank line,
      a line of underscores, and a newline followed by a list enumerator or an ALL-CAPS
      ``HEADER:`` always cut;
    * list enumerators ``N.`` / ``N)`` (1-2 digits) at the start of a sentence are excluded from
      the span; an enumerator in mid-sentence cuts before itself only when it continues the
      numbering seen so far (``... 1. No effusion 2. Mild edema`` gives two sentences). A number
      that merely ends a sentence ("grade 2. Lungs clear.") is kept, except in the rare case
      where it also continues an ongoing numbered list.
    """
    if not isinstance(text, str):
        raise TypeError(f"sentence_char_spans expects str, got {type(text).__name__}")
    n = len(text)
    if n == 0 or text.isspace():
        return []

    # Events are processed left to right: kind 0 = hard cut, 1 = enumerator, 2 = terminator.
    events: list[tuple[int, int, int, int]] = []  # (position, kind, end, number)
    for m in _BLANK_LINE.finditer(text):
        events.append((m.start(), 0, m.end(), 0))
    for m in _UNDERSCORE_LINE.finditer(text):
        events.append((m.start(), 0, m.start(), 0))
        events.append((m.end(), 0, m.end(), 0))
    for m in _NEWLINE_BEFORE_ITEM.finditer(text):
        events.append((m.start(), 0, m.start(), 0))
    for m in _ENUMERATOR.finditer(text):
        events.append((m.start(), 1, m.end(), int(m.group(1))))
    for m in _TERMINATOR.finditer(text):
        events.append((m.start(), 2, m.end(), 0))
    events.sort()

    cuts = [0]
    last_cut = 0
    last_enum: int | None = None
    for pos, kind, end, number in events:
        if pos < last_cut and kind != 0:
            continue
        if kind == 0:
            cuts.append(pos)
            last_cut = max(last_cut, pos)
            last_enum = None if _BLANK_LINE.match(text, pos) else last_enum
        elif kind == 1:
            if text[last_cut:pos].isspace() or last_cut == pos:
                last_enum = number
            elif last_enum is not None and number == last_enum + 1:
                cuts.append(pos)
                last_cut = pos
                last_enum = number
        else:
            before = text[last_cut:pos].strip()
            if before.isdigit() and len(before) <= 2 and text[pos] == ".":
                continue  # the "3." of a list enumerator
            if text[pos:end].startswith(".") and not text[pos:end].startswith(".."):
                if not _period_ends_sentence(text, last_cut, pos, end):
                    continue
            cuts.append(end)
            last_cut = end
    cuts.append(n)

    spans: list[tuple[int, int]] = []
    for a, b in zip(cuts, cuts[1:]):
        a, b = _trim(text, a, b)
        m = _LEADING_ENUMERATOR.match(text, a, b)
        if m:
            a, b = _trim(text, m.end(), b)
        if a < b and any(ch.isalnum() for ch in text[a:b]):
            spans.append((a, b))
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` as substrings: ``[text[a:b] for a, b in sentence_char_spans(text)]``."""
    return [text[a:b] for a, b in sentence_char_spans(text)]


def _period_ends_sentence(text: str, seg_start: int, pos: int, end: int) -> bool:
    m = _WORD_BEFORE.search(text, seg_start, pos)
    if m is None or m.end() != pos:
        return True
    word = m.group(1).lower()
    if word in _NEVER_FINAL:
        return False
    if word in _CONDITIONAL_FINAL or _DOTTED_ACRONYM.match(word):
        rest = text[end:].lstrip()
        return not rest or rest[0].isupper()
    return True


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One section of a report.

    ``name`` is the normalized name (see :func:`normalize_section_name`), ``raw_name`` the header
    as written (``""`` for the preamble / headerless text), and ``text == source[start:end]`` the
    whitespace-trimmed body, offsets into the string given to the parser (``-1`` for sections
    parsed from XML, which have no offsets into the original text).
    """

    name: str
    raw_name: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class ReportSections:
    """Sections extracted from one report.

    * ``findings`` / ``impression``: text of the **last** non-empty section of that normalized
      name, whitespace-trimmed (internal newlines kept); ``""`` when absent.
    * ``other``: normalized name -> text of the last non-empty section of that name, for every
      other name: e.g. ``comparison``, ``indication``, ``technique``, ``examination``,
      ``history``, ``addendum``, ``preamble`` (text before the first header), ``full report``
      (a text without any header), ``last_paragraph`` (fallback, see :func:`parse_mimic_report`).
    * ``spans``: name -> ``(start, end)`` offsets of the chosen text in the parsed string, for
      every key of ``other`` plus ``findings`` / ``impression`` when present (empty for XML).
    * ``sections``: every section in document order, including empty and repeated ones.
    """

    findings: str = ""
    impression: str = ""
    other: dict[str, str] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()

    @property
    def conclusion(self) -> str:
        """One conclusion per report, by priority impression > findings > last_paragraph > comparison."""
        return (
            self.impression
            or self.findings
            or self.other.get("last_paragraph", "")
            or self.other.get("comparison", "")
        )

    @property
    def is_empty(self) -> bool:
        return not (self.findings or self.impression or self.other)


# Our own synonym table (lower-cased, single-spaced names). Typos are the ones a report writer
# plausibly makes; the substring rules below catch most other variants.
_SYNONYMS: dict[str, str] = {
    # impression
    "impression": "impression", "impressions": "impression", "conclusion": "impression",
    "conclusions": "impression", "summary": "impression", "interpretation": "impression",
    "opinion": "impression", "findings and impression": "impression",
    "findings/impression": "impression", "findings / impression": "impression",
    "impression/findings": "impression", "impression and findings": "impression",
    "findings and impressions": "impression", "impresson": "impression",
    "impresion": "impression", "imprression": "impression", "impressiom": "impression",
    "imppression": "impression", "impession": "impression", "inpression": "impression",
    "imoression": "impression", "impressio": "impression", "impresssion": "impression",
    # findings
    "findings": "findings", "finding": "findings", "findngs": "findings",
    "fidings": "findings", "findins": "findings", "fndings": "findings",
    "findigns": "findings", "findinds": "findings", "findimgs": "findings",
    "fingings": "findings", "finidngs": "findings", "report": "findings",
    # comparison
    "comparison": "comparison", "comparisons": "comparison", "comparison exam": "comparison",
    "comparison exams": "comparison", "comparison study": "comparison",
    "comparison studies": "comparison", "reference exam": "comparison",
    "reference exams": "comparison", "prior": "comparison", "priors": "comparison",
    "prior studies": "comparison", "prior study": "comparison", "comparision": "comparison",
    "comparsion": "comparison", "compariosn": "comparison",
    # indication
    "indication": "indication", "indications": "indication",
    "reason for exam": "indication", "reason for examination": "indication",
    "reason for study": "indication", "clinical indication": "indication",
    "clinical indications": "indication", "clinical information": "indication",
    "indicaiton": "indication", "indcation": "indication",
    # history
    "history": "history", "clinical history": "history", "hx": "history",
    "patient history": "history",
    # technique / examination
    "technique": "technique", "techniques": "technique", "procedure": "technique",
    "examination": "examination", "exam": "examination", "exams": "examination",
    "study": "examination", "type of examination": "examination",
    # others
    "addendum": "addendum", "wet read": "wet read", "notification": "notification",
    "recommendation": "recommendation", "recommendations": "recommendation",
}
_CONTAINS_ORDER = ("impression", "findings", "history", "comparison", "addendum")
_VIEW_PHRASES = (
    "chest", "portable", "pa and lat", "ap and lat", "pa & lat", "frontal view", "lateral view",
    "frontal and lateral", "two views", "single view", "one view", "ap view", "pa view",
    "upright", "supine", "semi-erect", "semi-upright", "radiograph",
)


def normalize_section_name(raw: str) -> str:
    """Normalize a header (``"FINDINGS AND IMPRESSION"``) to a canonical lower-case name.

    Rules, in order: lower-case, strip, collapse inner whitespace; exact match in the synonym
    table; else the first of ``impression, findings, history, comparison, addendum`` contained in
    the name; else ``findings`` if the name contains a view phrase ("chest", "portable",
    "pa and lat", "two views", ...); else the cleaned name itself.
    """
    name = " ".join(raw.lower().split())
    if name in _SYNONYMS:
        return _SYNONYMS[name]
    for word in _CONTAINS_ORDER:
        if word in name:
            return word
    if any(phrase in name for phrase in _VIEW_PHRASES):
        return "findings"
    return name


# A header: start of text or newline, indentation, an ALL-CAPS name made of letters, spaces and
# ()/,- characters, a colon, then whitespace or the end of the text.  MIMIC indents every line
# by exactly one space; any indentation is accepted so unindented texts parse too.
_MIMIC_HEADER = re.compile(r"(?:\A|\n)[^\S\n]*([A-Z][A-Z ()/,-]*):(?:\s|\Z)")
_BLANK_LINE_SPLIT = re.compile(r"\n[^\S\n]*\n")
# Headers recognized anywhere (not only at line starts) in plain IU X-ray / OpenI text.
_IU_INLINE_HEADER = re.compile(
    r"(?<![A-Za-z])(FINDINGS|IMPRESSION|COMPARISON|INDICATION|HISTORY|TECHNIQUE|EXAMINATION)"
    r"[^\S\n]*:"
)


def parse_mimic_report(text: str | None) -> ReportSections:
    """Extract the sections of a MIMIC-CXR free-text report (datasets.md section 1.1).

    Behaviour:

    1. A header is the start of the text or a newline, indentation, a run of capital letters,
       spaces and ``()/,-`` beginning with a letter, a colon and whitespace (or the end).
       Text before the first header is ``preamble``; a section's body runs from after its header
       to the start of the next header. The search for the next header resumes at the newline
       that ends the current header's line, so capitals + colon inside a line never split.
       A text without any header is a single section ``full report``.
    2. Names are normalized with :func:`normalize_section_name`.
    3. Empty findings / impression bodies are dropped. If neither a findings nor an impression
       section remains, the last remaining section is split at its first blank line and the text
       after it becomes ``last_paragraph`` (absent when that section has no blank line).
    4. For every name the **last** non-empty section wins (addenda and repeated headers).

    ``None``, ``""`` and all-whitespace texts give an empty :class:`ReportSections`. Never
    raises on any ``str``. Not implemented: MIT-LCP's hand-written per-study overrides (study ids
    with custom section names or character offsets).
    """
    if text is None:
        return ReportSections()
    if not isinstance(text, str):
        raise TypeError(f"parse_mimic_report expects str or None, got {type(text).__name__}")
    if not text.strip():
        return ReportSections()

    headers: list[tuple[int, int, str]] = []  # (header start, body start, raw name)
    pos = 0
    while pos <= len(text):
        m = _MIMIC_HEADER.search(text, pos)
        if m is None:
            break
        headers.append((m.start(), m.end(), m.group(1)))
        nl = text.find("\n", m.end(1))
        if nl < 0:
            break
        pos = nl

    sections: list[Section] = []
    if not headers:
        sections.append(_make_section("full report", "", text, 0, len(text)))
    else:
        if headers[0][0] > 0:
            sections.append(_make_section("preamble", "", text, 0, headers[0][0]))
        for i, (_, body_start, raw) in enumerate(headers):
            body_end = headers[i + 1][0] if i + 1 < len(headers) else len(text)
            sections.append(
                _make_section(normalize_section_name(raw), raw.strip(), text, body_start, body_end)
            )
    return _assemble(sections, text)


def parse_openi_xml(xml: str | bytes) -> ReportSections:
    """Extract sections from one raw OpenI (IU X-ray) report XML document.

    Every ``<AbstractText Label="...">`` element becomes a section named by
    :func:`normalize_section_name` of its label (``FINDINGS``, ``IMPRESSION``, ``COMPARISON``,
    ``INDICATION``); its text (all nested text, trimmed) is the body; empty elements give empty
    sections. The last non-empty section of each name wins. ``spans`` is empty and section
    offsets are ``-1`` (offsets into XML markup would be meaningless). The ``XXXX``
    de-identification tokens are kept verbatim.

    Raises ``ValueError`` (naming the parser's message) when the document is not well-formed XML.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"OpenI report is not well-formed XML: {exc}") from exc
    sections = []
    for elem in root.iter("AbstractText"):
        label = (elem.get("Label") or "").strip()
        body = "".join(elem.itertext()).strip()
        name = normalize_section_name(label) if label else "abstract"
        sections.append(Section(name, label, body, -1, -1))
    return _assemble(sections, None)


def parse_iu_xray_report(report: str | bytes | None) -> ReportSections:
    """Sections of an IU X-ray report given as OpenI XML or as plain text.

    * Input starting with ``<`` (after whitespace) is parsed by :func:`parse_openi_xml`.
    * Plain text with headers ``FINDINGS:``, ``IMPRESSION:``, ``COMPARISON:``, ``INDICATION:``,
      ``HISTORY:``, ``TECHNIQUE:`` or ``EXAMINATION:`` (upper case, anywhere in the text) is split
      at them; text before the first header is ``preamble``.
    * Plain text without such headers is the findings section: the R2Gen annotation's ``report``
      field holds the IU findings only (datasets.md section 1.7).

    ``None`` and empty texts give an empty :class:`ReportSections`.
    """
    if report is None:
        return ReportSections()
    if isinstance(report, bytes):
        if report.lstrip().startswith(b"<"):
            return parse_openi_xml(report)
        report = report.decode("utf-8")
    if not isinstance(report, str):
        raise TypeError(f"parse_iu_xray_report expects str, bytes or None, got {type(report).__name__}")
    if not report.strip():
        return ReportSections()
    if report.lstrip().startswith("<"):
        return parse_openi_xml(report)

    matches = list(_IU_INLINE_HEADER.finditer(report))
    if not matches:
        return _assemble([_make_section("findings", "", report, 0, len(report))], report)
    sections = []
    if matches[0].start() > 0:
        sections.append(_make_section("preamble", "", report, 0, matches[0].start()))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(report)
        sections.append(_make_section(normalize_section_name(m.group(1)), m.group(1), report, m.end(), end))
    return _assemble(sections, report)


def _make_section(name: str, raw: str, text: str, start: int, end: int) -> Section:
    # A header whose trailing whitespace is the newline before the next header has an empty body.
    a, b = _trim(text, start, max(start, end))
    return Section(name, raw, text[a:b], a, b)


def _assemble(sections: list[Section], text: str | None) -> ReportSections:
    kept = [s for s in sections if s.text or s.name not in ("findings", "impression")]
    names = {s.name for s in kept}
    extra: list[Section] = []
    if "findings" not in names and "impression" not in names and kept and text is not None:
        last = kept[-1]
        m = _BLANK_LINE_SPLIT.search(text, last.start, last.end)
        if m is not None:
            extra.append(_make_section("last_paragraph", "", text, m.end(), last.end))
    chosen: dict[str, Section] = {}
    for s in kept + extra:
        if s.text:
            chosen[s.name] = s  # later sections overwrite earlier ones: the last one wins
    findings = chosen.pop("findings", None)
    impression = chosen.pop("impression", None)
    spans = {name: (s.start, s.end) for name, s in chosen.items()}
    if text is not None:
        if findings is not None:
            spans["findings"] = (findings.start, findings.end)
        if impression is not None:
            spans["impression"] = (impression.start, impression.end)
    else:
        spans = {}
    return ReportSections(
        findings=findings.text if findings else "",
        impression=impression.text if impression else "",
        other={name: s.text for name, s in chosen.items()},
        spans=spans,
        sections=tuple(sections) + tuple(extra),
    )
