"""Where do PLACE's pathology queries look? Attention mass on the synthetic lesion.

Pretrains ``pretrain/place_synthetic`` for ``--iters`` iterations, then, for test
studies of the synthetic world holding exactly one finding with a drawn region,
takes the query whose V-POR best matches the report sentence naming that finding
(and, as a second reading, the best match to any sentence) and
measures the share of its attention that lands on the lesion (grid cells weighted
by the fraction of their pixels inside the latent's mask, after the same
letterbox-and-crop as the image). A uniform map puts exactly the covered-area
fraction there; the "hit rate" is how often the query beats that. The same
measurement on the untrained model is printed as a control.

    python benchmarks/place_localization.py [--iters 300] [--studies 120]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def lesion_studies(count: int, image_px: int, seed: int = 7):
    """(study, mask) pairs of test studies with exactly one finding that has a region."""
    from place_bench.plugins.datasets.synthetic import generate_study

    found, index = [], 0
    while len(found) < count and index < 50 * count:
        study = generate_study(seed, "test", index, image_px, with_lateral=False)
        index += 1
        findings = study.latent.findings
        if len(findings) != 1:
            continue
        mask = study.targets.mask(findings[0].kind)
        if mask.any():
            found.append((study, mask))
    return found


def hit_rate(model, studies, pipeline, select: str) -> tuple[float, float, float, int]:
    """(hit rate, mean attention share on the lesion, mean uniform share, studies used).

    ``select="finding"``: the query best matching the report sentence that names the
    study's finding (the synthetic report says which); ``"any"``: the query best
    matching any sentence.
    """
    from place_bench.data.images import CXRTransform
    from place_bench.data.loaders import warp_mask
    from place_bench.data.pairs import caption

    transform = CXRTransform(**pipeline)
    pcma = next(o for o in model.objectives if hasattr(o, "observe"))
    hits, shares, uniform = 0, [], []
    model.eval()
    with torch.no_grad():
        for study, mask in studies:
            image, geometry = transform.apply(study.frontal)
            lesion = warp_mask(mask, geometry).astype(np.float32)
            report = study.reports["mimic"]
            text = caption(dict(report.sections, report=report.text))  # what pretraining reads
            out = model.pair_outputs(image[None], [text])
            seen = pcma.observe(out)
            gh, gw = seen["grid"]
            cover = torch.from_numpy(lesion.reshape(gh, lesion.shape[0] // gh, gw, lesion.shape[1] // gw).mean((1, 3)))
            cover = cover.flatten()
            scores = seen["tpor"][0] @ seen["vpor"][0].T  # (S, Q)
            valid = seen["tpor_mask"][0].clone()
            if select == "finding":
                kind = study.latent.findings[0].kind
                naming = {" ".join(s.text.split()) for s in report.sentences if kind in s.kinds}
                kept = out.text.batch.sentences[0]
                valid &= torch.tensor([" ".join(t.split()) in naming for t in kept] + [False] * (len(valid) - len(kept)))
            if not valid.any():
                continue
            query = int(scores[valid].max(0).values.argmax())
            attention = seen["attention"][0, query]
            share = float((attention * cover).sum() / attention.sum())
            base = float(cover.mean())
            hits += share > base
            shares.append(share)
            uniform.append(base)
    return hits / max(1, len(shares)), float(np.mean(shares)), float(np.mean(uniform)), len(shares)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--studies", type=int, default=120)
    parser.add_argument("--pairs", type=int, default=512)
    args = parser.parse_args()

    from mmengine.runner import set_random_seed

    from place_bench import api
    from place_bench.config import to_plain
    from place_bench.engine.pretrain import run_pretrain
    from place_bench.model.checkpoint import build_model_from_checkpoint

    options = {"data.train.source.n_train": args.pairs, "train_cfg.max_iters": args.iters,
               "pretrain.checkpoint_interval": args.iters, "pretrain.log_interval": 50}
    cfg = api.load_config("pretrain/place_synthetic", options)
    pipeline = to_plain(cfg.data.pipeline)
    image_px = int(cfg.data.train.source.image_px)
    studies = lesion_studies(args.studies, image_px)

    set_random_seed(int(cfg.get("seed", 0)))
    untrained = api.build_model(cfg)
    selections = ("finding", "any")
    before = {s: hit_rate(untrained, studies, pipeline, s) for s in selections}
    with tempfile.TemporaryDirectory() as work:
        path = run_pretrain(cfg, work_dir=Path(work))
        trained, _ = build_model_from_checkpoint(path)
        after = {s: hit_rate(trained, studies, pipeline, s) for s in selections}
    print(f"{len(studies)} single-finding test studies, {args.iters} pretraining iterations on {args.pairs} pairs")
    for select in selections:
        for name, result in (("untrained", before[select]), ("pretrained", after[select])):
            rate, share, base, used = result
            print(f"{name:>10}, query of the {select + ' sentence':<16}: beats a uniform map on {rate:.1%} of "
                  f"{used} studies (mean share on the lesion {share:.3f} vs uniform {base:.3f})")


if __name__ == "__main__":
    main()
