"""The suite's MIMIC section parser recovers the generated sections of synthetic reports."""

from place_bench.data.report_text import parse_mimic_report
from place_bench.plugins.datasets.synthetic import generate_reports, sample_latent


def normalized(text: str) -> str:
    return " ".join((text or "").split())


def test_parse_mimic_report_recovers_generated_findings_and_impression():
    mismatches = []
    for index in range(300):
        latent = sample_latent(0, "train", index)
        report = generate_reports(latent, ("mimic",))["mimic"]
        parsed = parse_mimic_report(report.text)
        for name in ("findings", "impression"):
            want = normalized(report.sections.get(name))
            got = normalized(getattr(parsed, name))
            if want != got:
                mismatches.append((index, name, want[:60], got[:60]))
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]}"
