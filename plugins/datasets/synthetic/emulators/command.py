"""``place-bench data synth``: write synthetic copies of the native datasets (datasets.md §4.7, §4.10).

``place-bench data synth --size {tiny,small,full} --out DIR [--datasets a,b,...] [--seed N] [--workers N]
[--contrast-gain G]`` writes one native-format tree per dataset, ``DIR/<dataset>/``
(``mimic_cxr``, ``chexpert``, ``rsna``, ``siim``, ``covidx``, ``object_cxr``, ``iu_xray``,
``mimic_rrg``), each with its ``latent.jsonl`` and ``manifest_of_quirks.json``, and prints per
dataset the files written, the counts per split and the time taken. ``prepare`` reads the trees
like real downloads (``place-bench data prepare rsna --root DIR/rsna ...``).

``--contrast-gain G`` (default 1.0, a finite number > 0; anything else is refused before any
file is written) is the §4.9 calibration knob: it multiplies the contrast of the lung and pleural
findings the renderer paints, leaving studies, ids, reports and labels as they are (1.0 = the
generator's own contrast). Every tree records it in ``manifest_of_quirks.json`` and in each
``latent.jsonl`` spec.

``mimic_rrg`` references the images of ``DIR/mimic_cxr`` (``image_root = ../mimic_cxr/files``)
when that tree is written in the same run or already holds an emulation with the same size,
seed and contrast gain (a tree without a recorded gain counts as 1.0); otherwise it renders its
own ``images/``. ``--workers`` renders the studies of each dataset in that many processes; the
output is identical for any worker count.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from place_bench.hookspecs import hookimpl


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``synth`` options to ``parser`` (the caller sets ``func=run_synth``)."""
    from . import DATASETS
    from ..sizes import SIZES

    parser.add_argument("--size", choices=tuple(SIZES), default="tiny", help="dataset sizes (default: tiny)")
    parser.add_argument("--out", required=True, help="output folder; one sub-folder per dataset")
    parser.add_argument("--datasets", nargs="+", default=["all"],
                        help=f"subset of {','.join(DATASETS)}, separated by commas or spaces (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default: 0)")
    parser.add_argument("--workers", type=int, default=1, help="rendering processes per dataset (default: 1)")
    parser.add_argument("--contrast-gain", default=1.0, metavar="G",
                        help="lesion contrast multiplier, a finite number > 0 (default: 1.0, the generator's own)")


def _datasets(text: str) -> list[str]:
    from . import DATASETS

    if text.strip() in ("", "all"):
        return list(DATASETS)
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    return [d for d in DATASETS if d in wanted]  # dependency order: mimic_cxr before mimic_rrg


def _same_emulation(root: Path, size: str, seed: int, contrast_gain: float = 1.0) -> bool:
    """Whether ``root`` holds an emulation made with ``size``, ``seed`` and ``contrast_gain``
    (a tree written before the gain was recorded was made with 1.0)."""
    from .common import recorded_emulation

    info = recorded_emulation(root)
    return (info is not None and info.get("size") == size and info.get("seed") == seed
            and info.get("image_px") is not None and info["contrast_gain"] == contrast_gain)


def _summary(counts: dict) -> str:
    parts = []
    for split, value in counts.items():
        if isinstance(value, dict):
            nums = " ".join(f"{k}={v}" for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool))
            parts.append(f"{split}[{nums}]")
        elif isinstance(value, int):
            parts.append(f"{split}={value}")
    return " ".join(parts)


def run_synth(args) -> int:
    from ..latent import check_contrast_gain
    from . import emulate

    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    gain = check_contrast_gain(args.contrast_gain, "--contrast-gain")
    chosen = args.datasets
    names = _datasets(chosen if isinstance(chosen, str) else ",".join(chosen))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"synthetic {args.size} datasets, seed {args.seed}, contrast gain {gain:g}, into {out}")
    for name in names:
        options = {"workers": args.workers}
        if name == "mimic_rrg" and ("mimic_cxr" in names
                                    or _same_emulation(out / "mimic_cxr", args.size, args.seed, gain)):
            options["mimic_root"] = out / "mimic_cxr"
        result = emulate(name, out / name, size=args.size, seed=args.seed, contrast_gain=gain, **options)
        print(f"  {name:<11} {len(result.paths):>6} files  {result.seconds:7.1f}s  {_summary(result.counts)}")
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0


@hookimpl
def place_bench_add_data_commands(subparsers):
    parser = subparsers.add_parser("synth", help="write synthetic copies of every native dataset format")
    add_synth_arguments(parser)
    parser.set_defaults(func=run_synth)
