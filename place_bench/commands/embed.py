"""``place-bench embed``: joint-space embeddings of image files and report texts.

The model comes from a suite checkpoint (``.safetensors``) or a config; images go
through the config's ``data.pipeline`` (the shared pipeline of datasets.md §2.0).
Prints the image-by-text cosine similarity matrix and, with ``--out``, writes the
embeddings to a safetensors file (``image_embeddings`` (I, D), ``text_embeddings``
(T, D), metadata ``images`` and ``texts`` as JSON lists).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_embed_parser(sub: argparse._SubParsersAction) -> None:
    from place_bench.cli import _cfg_options_argument

    p = sub.add_parser("embed", help="embed image files and report texts; print their similarities")
    p.add_argument("source", help="a suite checkpoint (.safetensors) or a config")
    p.add_argument("--image", nargs="+", default=[], metavar="PATH", help="PNG, JPEG or DICOM files")
    p.add_argument("--text", nargs="+", default=[], metavar="TEXT", help="report texts")
    p.add_argument("--out", help="write the embeddings to this .safetensors file")
    _cfg_options_argument(p)
    p.set_defaults(func=run_embed)


def run_embed(args) -> int:
    import torch
    from safetensors.torch import save

    from place_bench import api
    from place_bench.data.images import CXRTransform, read_image
    from place_bench.io import atomic_write_bytes

    if not args.image and not args.text:
        raise ValueError("give at least one --image or --text")
    model, config, _card = api.model_from_config_or_checkpoint(args.source, args.cfg_options, args.plugin_dir)
    model.eval()
    pipeline = CXRTransform(**((config.get("data") or {}).get("pipeline") or {}))
    tensors: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        if args.image:
            images = torch.stack([pipeline(read_image(path)) for path in args.image])
            tensors["image_embeddings"] = model.embed_image(images)
        if args.text:
            tensors["text_embeddings"] = model.embed_text(list(args.text))
    for key, value in tensors.items():
        print(f"{key}: {tuple(value.shape)}")
    if args.image and args.text:
        similarity = tensors["image_embeddings"] @ tensors["text_embeddings"].T
        print("cosine similarity (rows: images, columns: texts)")
        for i, path in enumerate(args.image):
            cells = " ".join(f"{v:+.3f}" for v in similarity[i].tolist())
            best = int(similarity[i].argmax())
            print(f"  {Path(path).name}: {cells}   best: text {best}")
    if args.out:
        meta = {"images": json.dumps(list(args.image)), "texts": json.dumps(list(args.text)), "source": str(args.source)}
        atomic_write_bytes(args.out, save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta))
        print(f"wrote {args.out}")
    return 0
