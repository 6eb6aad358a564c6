"""Data throughput: synthetic generation rate and loader images/s.

Prints
  (a) synthetic studies generated per second (``generate_study``, frontal + lateral, reports and
      targets) at 256 px and 1024 px;
  (b) images/s at 224 px through ``torch.utils.data.DataLoader`` for the loaders over an emulated + prepared tiny MIMIC-CXR (``ImageReportDataset``) and CheXpert
      (``ClassificationDataset``), with ``num_workers`` 0 and 2.

Figures only, no asserts. Numbers depend on the machine (CPU count, disk cache).

    python benchmarks/data_throughput.py [--studies 6] [--epochs 3] [--batch-size 16] [--image-px 256]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402


def generation_rate(size_px: int, n: int) -> float:
    """Studies per second of ``generate_study`` at ``size_px`` (one warm-up study not timed)."""
    from place_bench.plugins.datasets.synthetic.study import generate_study

    generate_study(0, "train", 10_000, size_px)
    start = time.perf_counter()
    for i in range(n):
        generate_study(0, "train", i, size_px)
    return n / (time.perf_counter() - start)


def prepare(name: str, protocol: str, work: Path, image_px: int | None = None, **options) -> Path:
    from place_bench.plugins.datasets.synthetic.emulators import emulate
    from place_bench.registry import get_component

    emulated = emulate(name, work / name, size="tiny", seed=0, image_px=image_px)
    result = get_component("dataset", name).obj(**options).prepare(emulated.root, protocol, work / "out", check_images=True)  # drops planted missing images
    return Path(result.manifest_path)


def loader_rate(dataset, workers: int, batch_size: int, epochs: int) -> float:
    """Images per second over ``epochs`` passes (the first batch of each pass is not timed, so
    worker start-up is excluded)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    images, seconds = 0, 0.0
    for _ in range(epochs):
        it = iter(loader)
        next(it)
        start = time.perf_counter()
        for batch in it:
            images += batch["image"].shape[0]
        seconds += time.perf_counter() - start
    return images / seconds if seconds > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=6, help="studies timed per generation size")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-px", type=int, default=None,
                        help="native side of the emulated images (default: the emulators' tiny size, 64)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread per process, so worker counts compare fairly

    print(f"cpus: {os.cpu_count()}  torch threads: {torch.get_num_threads()}")
    for px in (256, 1024):
        n = args.studies if px == 256 else max(2, args.studies // 3)
        print(f"synthetic generation  {px:>4} px: {generation_rate(px, n):7.2f} studies/s  ({n} studies)")

    from place_bench.data.images import read_image
    from place_bench.data.loaders import ClassificationDataset
    from place_bench.data.pairs import ImageReportDataset

    with tempfile.TemporaryDirectory(prefix="pb_data_tp_") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        mimic = prepare("mimic_cxr", "mgca", work, args.image_px)
        # tiny trees cannot fill MGCA's 5,000-image valid split nor 200 images per 5x200 class
        chexpert = prepare("chexpert", "mgca", work, args.image_px, n_valid=4, n_per_class=2)
        print(f"emulate + prepare tiny mimic_cxr and chexpert: {time.perf_counter() - start:.1f} s")
        datasets = {
            "ImageReportDataset (mimic_cxr/mgca train)": ImageReportDataset(mimic, split="train", train=True),
            "ClassificationDataset (chexpert/mgca train)": ClassificationDataset(chexpert, split="train", train=True),
        }
        for name, ds in datasets.items():
            h, w = ds[0]["image"].shape[-2:]
            first = ds.paths[0] if hasattr(ds, "paths") else ds.rows[0]["image_path"]
            nh, nw = read_image(ds.root / first).shape
            print(f"{name}: native images about {nh}x{nw} ({Path(first).suffix})")
            for workers in (0, 2):
                rate = loader_rate(ds, workers, args.batch_size, args.epochs)
                print(f"{name}: {len(ds)} images at {h}x{w}, num_workers={workers}: {rate:8.1f} images/s")


if __name__ == "__main__":
    main()
