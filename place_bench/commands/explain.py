"""``place-bench explain``: where a PLACE checkpoint's pathology queries look in one image.

``place-bench explain CKPT --image PATH --report TEXT --out DIR`` loads a suite checkpoint whose
model has a PCMA objective (any objective with an ``observe(outputs)`` method, as ``place_pcma``;
spec/place.md, "VPOE": the queries' cross-attention maps are the model's localization of each
observation), runs the image (through the config's ``data.pipeline``, eval crop) and the report
through the model, and writes into DIR:

* ``query_00.png`` ... one per query: the crop in grey with the query's last-block cross-attention
  map (grid cells, bilinearly upsampled to the crop) overlaid in colour, titled with the report
  sentence whose T-POR best matches the query's V-POR (argmax over sentences of ⟨t_m, v_q⟩,
  both L2-normalized) and that cosine;
* ``index.json``: checkpoint, image, report, grid, crop size, the report's sentences and, per
  query, ``file``, ``query``, ``sentence_index``, ``sentence``, ``score`` and ``peak_cell`` (y, x).

Every file is written atomically (a temporary name, then a rename).
"""

from __future__ import annotations

import argparse
import io
import json
import textwrap
from pathlib import Path


def report_caption(text: str) -> str:
    """The text pretraining reads from a report: impression then findings when the report
    has those sections (MIMIC style), else the text itself."""
    from place_bench.data.pairs import caption
    from place_bench.data.report_text import parse_mimic_report

    sections = parse_mimic_report(text)
    return caption({"findings": sections.findings, "impression": sections.impression, "report": text})


def add_explain_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="plot each PLACE pathology query's attention on an image with its best-matching report sentence",
    )
    p.add_argument("checkpoint", help="a suite checkpoint (.safetensors) whose model has a place_pcma objective")
    p.add_argument("--image", required=True, metavar="PATH", help="a PNG, JPEG or DICOM file")
    p.add_argument(
        "--report", required=True, metavar="TEXT",
        help="the report text; a sectioned report (FINDINGS: / IMPRESSION:) is reduced to impression + findings, as in pretraining",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for one PNG per query and index.json")
    p.set_defaults(func=run_explain)


def find_observer(model):
    """The first objective of ``model`` with an ``observe`` method (duck typing), or None."""
    return next((objective for objective in getattr(model, "objectives", []) if hasattr(objective, "observe")), None)


def _sentence_texts(text, spans, mask) -> list[str]:
    """Text of each observation of report 0: the report's sentences when the observations are
    its sentences, else the words of each span joined by spaces (clauses)."""
    batch = text.batch
    n = int(mask.sum())
    same_as_sentences = spans.shape == text.sentence_spans.shape and bool((spans.cpu() == text.sentence_spans.cpu()).all())
    if same_as_sentences and len(batch.sentences) and len(batch.sentences[0]) >= n:
        return [batch.sentences[0][m].strip() for m in range(n)]
    words = batch.words[0] if batch.words else []
    return [" ".join(words[int(a):int(b)]) for a, b in spans[0, :n].tolist()]


def _render_png(crop, heat, title: str) -> bytes:
    """PNG bytes: ``crop`` (H, W) in [0, 1] in grey, ``heat`` (H, W) overlaid with a colormap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 4.8), dpi=100)
    FigureCanvasAgg(fig)  # the Agg backend, without touching pyplot's global state
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(crop, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    shown = ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0.0, vmax=max(float(heat.max()), 1e-12), interpolation="nearest")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="attention")
    ax.set_title("\n".join(textwrap.wrap(title, 48)[:4]), fontsize=8)
    ax.set_axis_off()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def run_explain(args) -> int:
    import torch
    import torch.nn.functional as F

    from place_bench.data.images import CXRTransform, read_image
    from place_bench.io import atomic_write_bytes, atomic_write_text
    from place_bench.model.checkpoint import build_model_from_checkpoint
    from place_bench.plugin_manager import get_plugin_manager

    get_plugin_manager(getattr(args, "plugin_dir", None) or ())
    model, card = build_model_from_checkpoint(args.checkpoint)
    observer = find_observer(model)
    if observer is None:
        kinds = [v for k, v in sorted((card.get("components") or {}).items()) if k.startswith("objectives.")]
        raise ValueError(
            f"'{args.checkpoint}' has no PCMA objective to explain (objectives: {kinds or 'none'}); "
            "train with model.objectives including type='place_pcma'"
        )
    if not str(args.report).strip():
        raise ValueError("--report is empty: explain needs at least one report sentence")
    config = card.get("config") or {}
    pipeline = CXRTransform(**((config.get("data") or {}).get("pipeline") or {}))
    image = pipeline(read_image(args.image))  # (3, H, W), normalized
    model.eval()
    with torch.no_grad():
        outputs = model.pair_outputs(image[None], [report_caption(str(args.report))])
        seen = observer.observe(outputs)
    mask = seen["tpor_mask"][0].bool()
    if not bool(mask.any()):
        raise ValueError("the report has no sentence left after tokenization: nothing to match the queries with")
    sentences = _sentence_texts(outputs.text, seen["tpor_spans"], seen["tpor_mask"])
    scores = seen["vpor"][0] @ seen["tpor"][0].T  # (Q, S): query q vs observation m
    scores = scores.masked_fill(~mask[None, :], float("-inf"))
    best_score, best_sentence = scores.max(dim=1)
    gh, gw = seen["grid"]
    attention = seen["attention"][0].float()  # (Q, N), row-major grid
    n_queries = attention.shape[0]
    height, width = image.shape[-2:]
    heat = F.interpolate(attention.reshape(1, n_queries, gh, gw), size=(height, width), mode="bilinear", align_corners=False)[0]
    crop = (image[0] * pipeline.std[0] + pipeline.mean[0]).clamp(0, 1).numpy()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for q in range(n_queries):
        m = int(best_sentence[q])
        score = float(best_score[q])
        name = f"query_{q:02d}.png"
        peak = int(attention[q].argmax())
        title = f"query {q}: \"{sentences[m]}\" (cos {score:+.3f})"
        atomic_write_bytes(out / name, _render_png(crop, heat[q].numpy(), title))
        entries.append(
            {"file": name, "query": q, "sentence_index": m, "sentence": sentences[m], "score": score,
             "peak_cell": [peak // gw, peak % gw]}
        )
        print(f"{name}: sentence {m} ({score:+.3f}) {sentences[m]}")
    index = {
        "checkpoint": str(args.checkpoint),
        "image": str(args.image),
        "report": str(args.report),
        "grid": [int(gh), int(gw)],
        "crop": [int(height), int(width)],
        "sentences": sentences,
        "queries": entries,
    }
    atomic_write_text(out / "index.json", json.dumps(index, indent=2) + "\n")
    print(f"wrote {n_queries} query maps and index.json to {out}")
    return 0
