"""Binary mask run-length encodings: the canonical manifest RLE and SIIM-ACR's relative RLE.

Orientation conventions (all functions):

* a mask is a ``bool`` numpy array ``M[row, col]`` of shape ``(height, width)``; row 0 is the top
  of the image, column 0 its left edge (as stored, no flips);
* pixels are linearized **column-major**: pixel ``(row, col)`` has index ``k = col * height + row``
  (walk down the first column, then the second, ...). This is the COCO / pycocotools order:
  ``mask.ravel(order="F")``, and the SIIM-ACR order (datasets.md section 1.4).

Canonical RLE (datasets.md section 3.4), the ``mask_rle`` manifest column:
    ``"<height> <width> c0 c1 c2 ..."`` where ``c0, c1, ...`` are COCO *uncompressed* RLE counts:
    alternating run lengths of background and foreground over the column-major order, starting
    with background (``c0`` may be 0), all positive after ``c0``, summing to ``height * width``.
    An empty mask is ``"<h> <w> <h*w>"``. ``{"size": [h, w], "counts": [c0, c1, ...]}`` is
    accepted by ``pycocotools.mask.frPyObjects``.

SIIM-ACR relative RLE (Kaggle ``train-rle.csv``, stage 1):
    ``"o1 l1 o2 l2 ..."``: ``l_i`` is the length of the i-th foreground run, ``o_i`` the number of
    background pixels between the end of the previous run (or the image start) and that run, over
    the same column-major order. It equals the canonical counts without the trailing background
    count. ``"-1"`` is an empty mask; several rows for one image are OR-ed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, Sequence

import numpy as np

__all__ = [
    "RLEError",
    "SIIM_MODES",
    "counts_to_mask",
    "mask_to_counts",
    "mask_to_rle",
    "mask_to_siim_rle",
    "plausible_siim_modes",
    "rle_to_coco",
    "rle_to_mask",
    "siim_rle_to_mask",
    "siim_to_canonical",
]

SiimMode = Literal["relative", "absolute0", "absolute1"]
SIIM_MODES: tuple[str, ...] = ("relative", "absolute0", "absolute1")
_INT_TOKEN = re.compile(r"-?[0-9]+\Z")


class RLEError(ValueError):
    """A malformed RLE string; the message starts with the caller's ``where`` context if given."""


def _fail(where: str | None, problem: str, value: object = None) -> RLEError:
    msg = problem
    if value is not None:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        msg = f"{problem} in RLE value {shown}"
    return RLEError(f"{where}: {msg}" if where else msg)


# --------------------------------------------------------------------------------------------
# Canonical (COCO uncompressed counts, column-major)
# --------------------------------------------------------------------------------------------


def mask_to_counts(mask: np.ndarray) -> list[int]:
    """COCO uncompressed counts of a 2-D mask (column-major, background first).

    Any non-zero value is foreground. The list has no trailing zero; it starts with 0 when pixel
    ``(0, 0)`` is foreground; an empty mask gives ``[h * w]``.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {m.shape}")
    flat = m.astype(bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(edges).tolist()
    return [0] + runs if flat[0] else runs


def counts_to_mask(counts: Sequence[int], shape: tuple[int, int], where: str | None = None) -> np.ndarray:
    """Decode COCO uncompressed ``counts`` into a ``bool`` mask of ``shape = (height, width)``.

    Counts must be non-negative integers summing exactly to ``height * width``; otherwise
    :class:`RLEError`.
    """
    h, w = int(shape[0]), int(shape[1])
    c = np.asarray(counts)
    if c.ndim != 1 or c.size == 0 or not np.issubdtype(c.dtype, np.integer):
        raise _fail(where, "counts must be a non-empty list of integers")
    if (c < 0).any():
        raise _fail(where, "negative run length")
    if int(c.sum()) != h * w:
        raise _fail(where, f"run lengths sum to {int(c.sum())}, expected height*width = {h * w}")
    values = np.arange(c.size) % 2 == 1  # background, foreground, background, ...
    flat = np.repeat(values, c)
    return flat.reshape((h, w), order="F")


def mask_to_rle(mask: np.ndarray) -> str:
    """Canonical manifest RLE string ``"<h> <w> c0 c1 ..."`` of a 2-D mask."""
    m = np.asarray(mask)
    counts = mask_to_counts(m)
    return " ".join(str(v) for v in (m.shape[0], m.shape[1], *counts))


def _parse_canonical(rle: str, where: str | None) -> tuple[int, int, list[int]]:
    if not isinstance(rle, str):
        raise _fail(where, f"expected a string, got {type(rle).__name__}")
    tokens = rle.split()
    if len(tokens) < 3:
        raise _fail(where, "canonical RLE needs '<height> <width> <counts...>'", rle)
    try:
        values = [int(t) for t in tokens]
    except ValueError:
        raise _fail(where, "non-integer token", rle) from None
    h, w = values[0], values[1]
    if h < 0 or w < 0:
        raise _fail(where, f"negative size {h}x{w}", rle)
    return h, w, values[2:]


def rle_to_mask(rle: str, where: str | None = None) -> np.ndarray:
    """Decode a canonical RLE string into a ``bool`` ``(height, width)`` mask.

    Raises :class:`RLEError` (prefixed with ``where``) on non-integer tokens, a missing size,
    negative counts, or counts that do not sum to ``height * width``.
    """
    h, w, counts = _parse_canonical(rle, where)
    return counts_to_mask(counts, (h, w), where)


def rle_to_coco(rle: str, where: str | None = None) -> dict:
    """Canonical RLE string -> ``{"size": [h, w], "counts": [...]}`` (pycocotools uncompressed RLE)."""
    h, w, counts = _parse_canonical(rle, where)
    counts_to_mask(counts, (h, w), where)  # validation only
    return {"size": [h, w], "counts": counts}


# --------------------------------------------------------------------------------------------
# SIIM-ACR
# --------------------------------------------------------------------------------------------


def _siim_runs(value: object, n_pixels: int, mode: str, where: str | None) -> np.ndarray | None:
    """Validated ``(starts, ends)`` of the foreground runs of one SIIM value, as an ``(R, 2)``
    int64 array of half-open pixel intervals; ``None`` for ``"-1"``."""
    if not isinstance(value, str):
        raise _fail(where, f"missing RLE value (got {type(value).__name__} {value!r})")
    text = value.strip()
    if not text:
        raise _fail(where, "empty RLE value (an empty mask is written '-1')")
    if text == "-1":
        return None
    tokens = text.split()
    for t in tokens:
        if not _INT_TOKEN.match(t):
            raise _fail(where, f"non-integer token {t!r}", value)
    nums = np.array([int(t) for t in tokens], dtype=np.int64)
    if nums.size % 2:
        raise _fail(where, f"odd number of values ({nums.size}); expected offset/length pairs", value)
    if (nums < 0).any():
        raise _fail(where, "negative number", value)
    pairs = nums.reshape(-1, 2)
    first, lengths = pairs[:, 0], pairs[:, 1]
    if (lengths == 0).any():
        raise _fail(where, f"run #{int(np.argmax(lengths == 0)) + 1} has length 0", value)
    if mode == "relative":
        ends = np.cumsum(first + lengths)
        starts = ends - lengths
    elif mode in ("absolute0", "absolute1"):
        starts = first - (1 if mode == "absolute1" else 0)
        ends = starts + lengths
        if (starts < 0).any():
            raise _fail(where, "1-based start 0", value)
        if (starts[1:] < ends[:-1]).any():
            raise _fail(where, "absolute runs overlap or are out of order", value)
    else:
        raise ValueError(f"unknown SIIM RLE mode {mode!r}; expected one of {SIIM_MODES}")
    if ends[-1] > n_pixels:
        over = int(np.argmax(ends > n_pixels)) + 1
        raise _fail(
            where, f"run #{over} ends at pixel {int(ends[over - 1])}, beyond the {n_pixels}-pixel image", value
        )
    return np.stack([starts, ends], axis=1)


def siim_rle_to_mask(
    values: str | Iterable[str],
    shape: tuple[int, int] = (1024, 1024),
    where: str | None = None,
    mode: SiimMode = "relative",
) -> np.ndarray:
    """Decode SIIM-ACR RLE value(s) of one image into a ``bool`` ``(height, width)`` mask.

    ``values`` is one string or an iterable of strings (one per CSV row of the image); the image
    mask is the union of the rows. Surrounding whitespace is ignored (the stage-1 CSV writes
    ``" -1"`` and ``" 387620 23 ..."``); ``"-1"`` is an empty mask. Decoding follows
    datasets.md section 1.4: a cursor starts at 0; for each pair it advances by the offset,
    paints ``length`` pixels and advances by ``length``; pixel index ``k`` is
    ``(row, col) = (k % height, k // height)`` -- i.e. fill a ``(width, height)`` array in C order
    and transpose. A final run touching the last pixel is allowed and is not required.

    ``mode`` selects the interpretation for non-stage-1 files: ``"relative"`` (above),
    ``"absolute0"`` / ``"absolute1"`` (``start length`` pairs, 0- or 1-based starts, increasing,
    non-overlapping). Use :func:`plausible_siim_modes` to detect it over a whole file.

    Raises :class:`RLEError`, its message prefixed with ``where`` (e.g.
    ``"train-rle.csv row 12 (ImageId ...)"``), on: a missing (``None``/NaN) or empty value,
    non-integer tokens, an odd number of values, negative numbers other than a lone ``-1``,
    zero-length runs, runs beyond the image, overlapping absolute runs, or no values at all.
    """
    h, w = int(shape[0]), int(shape[1])
    n = h * w
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        rows = [values]  # one value, possibly None / NaN, reported as missing below
    else:
        rows = list(values)
    if not rows:
        raise _fail(where, "no RLE values given for the image")
    delta = np.zeros(n + 1, dtype=np.int32)
    for i, value in enumerate(rows):
        ctx = where if len(rows) == 1 else f"{where + ', ' if where else ''}value {i + 1} of {len(rows)}"
        runs = _siim_runs(value, n, mode, ctx)
        if runs is not None:
            np.add.at(delta, runs[:, 0], 1)
            np.add.at(delta, runs[:, 1], -1)
    flat = np.cumsum(delta[:-1]) > 0
    return flat.reshape((h, w), order="F")


def siim_to_canonical(
    values: str | Iterable[str],
    shape: tuple[int, int] = (1024, 1024),
    where: str | None = None,
    mode: SiimMode = "relative",
) -> str:
    """Union of an image's SIIM RLE rows re-encoded as a canonical RLE string."""
    return mask_to_rle(siim_rle_to_mask(values, shape, where, mode))


def mask_to_siim_rle(mask: np.ndarray) -> str:
    """Encode a mask as a SIIM-ACR relative RLE string (``"-1"`` when empty).

    Equal to the canonical counts without the trailing background count; a run touching the last
    pixel is emitted (unlike the competition's published encoder, which drops it).
    """
    counts = mask_to_counts(mask)
    if len(counts) % 2:
        counts = counts[:-1]  # drop the trailing background run
    return " ".join(map(str, counts)) if counts else "-1"


def plausible_siim_modes(value: str, shape: tuple[int, int] = (1024, 1024)) -> tuple[str, ...]:
    """The modes among :data:`SIIM_MODES` under which ``value`` decodes without error.

    ``"-1"`` is plausible under every mode. Intersect the results over all rows of a file to
    decide its convention; a file for which several modes remain is ambiguous (datasets.md
    section 1.4 item 8: refuse it unless the user names the mode).
    """
    n = int(shape[0]) * int(shape[1])
    ok = []
    for mode in SIIM_MODES:
        try:
            _siim_runs(value, n, mode, None)
        except RLEError:
            continue
        ok.append(mode)
    return tuple(ok)
