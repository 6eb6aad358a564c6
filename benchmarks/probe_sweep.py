"""Linear-probe sweep cost: 3 fractions x 3 seeds with the feature cache vs one probe without it.

Both arms run in this process on the same synthetic COVIDx emulation and the same frozen
encoder (default: timm efficientnet_lite0 with its real ImageNet weights at 224 px, the
"ImageNet init" row, so that feature extraction costs what a real encoder costs):

* baseline: one unit (fraction 1.0, seed 0) with ``task.cache=False`` -- extract train/val/test
  features, train one head, score with bootstrap intervals; run before and after the sweep, the
  faster of the two counts;
* sweep: the 9 units of the canonical card (fractions 0.01/0.1/1.0 x seeds 0/1/2) in one
  ``evaluate`` call with the on-disk cache empty at the start.

The figure is the ratio sweep / baseline (target <= 1.5x: the sweep should cost about one
extraction plus nine cheap heads).

    python benchmarks/probe_sweep.py [--size small] [--model eval/imagenet_init_effnet_lite0] [--px 224]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "full"])
    parser.add_argument("--model", default="eval/imagenet_init_effnet_lite0")
    parser.add_argument("--px", type=int, default=224, help="crop size of the section 2.0 pipeline")
    parser.add_argument("--n-resamples", type=int, default=1000)
    args = parser.parse_args()

    from place_bench.engine.evaluate import evaluate, load_subject
    from place_bench.engine.task import DatasetRef
    from place_bench.plugin_manager import get_plugin_manager
    from place_bench.plugins.datasets.synthetic.emulators import emulate
    from place_bench.registry import get_component
    from place_bench.results.store import ResultsStore

    get_plugin_manager()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        native = emulate("covidx", tmp / "native", size=args.size, seed=0).root
        result = get_component("dataset", "covidx").obj().prepare(native, "suite", tmp / "manifests", check_images=False)
        dataset = DatasetRef.open(result.manifest_path)
        print(f"synthetic COVIDx ({args.size}): {result.rows} rows, prepared in {time.perf_counter() - t0:.1f} s")
        pipeline = {"resize_to": round(args.px * 256 / 224), "crop": args.px}
        options = {"data.pipeline.resize_to": pipeline["resize_to"], "data.pipeline.crop": pipeline["crop"]}
        subject = load_subject(args.model, cfg_options=options)
        task = dict(type="cls_linear", n_resamples=args.n_resamples)

        def one_probe(name: str) -> float:
            t0 = time.perf_counter()
            evaluate(subject, dict(task, cache=False), dataset, ResultsStore(tmp / name), fractions=[1.0],
                     seeds=[0], work_dir=tmp / f"work_{name}", log=lambda _: None)
            return time.perf_counter() - t0

        # The baseline runs before and after the sweep and the faster run counts, so a load spike
        # on a shared machine cannot flatter the ratio.
        baselines = [one_probe("baseline_before")]
        t0 = time.perf_counter()
        lines: list[str] = []
        summary = evaluate(subject, task, dataset, ResultsStore(tmp / "sweep"), fractions=[0.01, 0.1, 1.0],
                           seeds=[0, 1, 2], work_dir=tmp / "work_sweep",
                           log=lambda line: lines.append(f"  [{time.perf_counter() - t0:6.1f} s] {line}"))
        sweep = time.perf_counter() - t0
        baselines.append(one_probe("baseline_after"))
        baseline = min(baselines)
        assert len(summary.written) == 9, summary.failed

    print(f"encoder {subject.label} at {args.px} px, {args.n_resamples} bootstrap resamples per metric")
    print(f"one probe without the cache: {baseline:.1f} s (runs before/after the sweep: "
          f"{baselines[0]:.1f} / {baselines[1]:.1f} s)")
    print(f"3 fractions x 3 seeds with the cache: {sweep:.1f} s")
    print("\n".join(lines))
    print(f"ratio sweep / one probe: {sweep / baseline:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
