"""A tiny stroke font for burned-in markers ("R", "PORTABLE", "AP").

Each glyph is a list of polylines in glyph units: x in [0, 0.9] to the right,
y in [0, 1] downward, height 1. Letters are drawn as strokes so they scale to
any resolution without a font file.
"""

from __future__ import annotations

import numpy as np

_BOWL = [(0, 0), (0.65, 0), (0.85, 0.12), (0.85, 0.38), (0.65, 0.5), (0, 0.5)]
GLYPHS: dict[str, list[list[tuple[float, float]]]] = {
    "R": [[(0, 0), (0, 1)], _BOWL, [(0.4, 0.5), (0.85, 1)]],
    "P": [[(0, 0), (0, 1)], _BOWL],
    "O": [[(0.2, 0), (0.65, 0), (0.85, 0.2), (0.85, 0.8), (0.65, 1), (0.2, 1), (0, 0.8), (0, 0.2), (0.2, 0)]],
    "T": [[(0, 0), (0.85, 0)], [(0.425, 0), (0.425, 1)]],
    "A": [[(0, 1), (0.425, 0), (0.85, 1)], [(0.2, 0.58), (0.65, 0.58)]],
    "B": [[(0, 0), (0, 1)], _BOWL,
          [(0.65, 0.5), (0.9, 0.62), (0.9, 0.88), (0.7, 1), (0, 1)]],
    "L": [[(0, 0), (0, 1), (0.8, 1)]],
    "E": [[(0.8, 0), (0, 0), (0, 1), (0.8, 1)], [(0, 0.5), (0.6, 0.5)]],
}
ADVANCE = 1.15  # horizontal advance per letter, in glyph heights


def text_strokes(text: str, u0: float, v0: float, height: float, aspect: float = 1.0) -> list[np.ndarray]:
    """Polylines (image coordinates) of ``text`` with its top-left at ``(u0, v0)``.

    ``height`` is in v units; ``aspect = H / W`` keeps letters undistorted on
    non-square images (x extents are multiplied by it).
    """
    out = []
    for i, ch in enumerate(text):
        if ch == " ":
            continue
        if ch not in GLYPHS:
            raise ValueError(f"no glyph for {ch!r}")
        for line in GLYPHS[ch]:
            pts = np.array(line, dtype=np.float64)
            u = u0 + (i * ADVANCE + pts[:, 0]) * height * aspect
            v = v0 + pts[:, 1] * height
            out.append(np.stack([u, v], axis=1))
    return out


def text_width(text: str, height: float, aspect: float = 1.0) -> float:
    return (len(text) * ADVANCE - (ADVANCE - 0.9)) * height * aspect
