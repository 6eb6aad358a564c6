"""Fixtures for the synthetic-world tests."""

from __future__ import annotations

import pytest

from place_bench.plugins.datasets.synthetic.latent import (
    Anatomy,
    Finding,
    Nuisance,
    ReportNoise,
    StudyLatent,
)


@pytest.fixture
def make_latent():
    """Factory for hand-built latents: template anatomy (no jitter), identity pose,
    no blur / noise / exposure change, no marker, PA view."""

    def make(findings=(), devices=(), objects=(), view="PA", nuisance=None, anatomy=None, **kw):
        nu = nuisance or Nuisance()
        fs = []
        for i, f in enumerate(findings):
            if isinstance(f, Finding):
                fs.append(f)
            else:
                d = dict(id=i, side=None, zone=None, severity="moderate", certainty="definite", change="none",
                         params={})
                d.update(f)
                fs.append(Finding(**d))
        fields = dict(seed=0, split="hand", index=0, profile="mimic", attempt=0, sex="woman", view=view,
                      inpatient=False, clusters=[], has_lateral=True, anatomy=anatomy or Anatomy(), nuisance=nu,
                      findings=fs, devices=list(devices), foreign_objects=list(objects),
                      report_noise=ReportNoise(), render_seed=1234, text_seed=5678)
        fields.update(kw)
        return StudyLatent(**fields)

    return make
