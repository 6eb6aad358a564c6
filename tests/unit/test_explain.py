"""``place-bench explain``: one attention PNG per PCMA query plus index.json from a tiny checkpoint."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from place_bench import api
from place_bench import config as config_mod
from place_bench import registry as registries
from place_bench.commands.explain import add_explain_parser, run_explain
from place_bench.model.checkpoint import save_checkpoint
from place_bench.plugin_manager import Registrar, get_plugin_manager

REPORT = "The heart is enlarged. Small left pleural effusion. No pneumothorax."


def _register_pcma():
    get_plugin_manager()
    if "place_pcma" not in {c.name for c in registries.components("objective")}:
        from place_bench.plugins.objectives.place import pcma

        pcma.place_bench_register(Registrar("place_pcma_test"))


def _checkpoint(tmp_path, objectives):
    _register_pcma()
    cfg = api.load_config("eval/embed_tiny")
    cfg.model.objectives = objectives
    cfg.model.image_local_projection = dict(type="projection")
    cfg.model.text_local_projection = dict(type="projection")
    torch.manual_seed(0)
    model = api.build_model(cfg)
    return save_checkpoint(model, tmp_path / f"model_{len(objectives)}.safetensors", config_mod.to_plain(cfg))


def _image(tmp_path):
    rng = np.random.default_rng(0)
    pixels = (rng.random((90, 80)) * 255).astype(np.uint8)
    path = tmp_path / "cxr.png"
    Image.fromarray(pixels, mode="L").save(path)
    return path


def _args(checkpoint, image, out, report=REPORT):
    parser = argparse.ArgumentParser()
    add_explain_parser(parser.add_subparsers())
    return parser.parse_args(["explain", str(checkpoint), "--image", str(image), "--report", report, "--out", str(out)])


def test_explain_writes_one_png_per_query_and_an_index(tmp_path, capsys):
    checkpoint = _checkpoint(tmp_path, [dict(type="place_pcma", num_queries=4, depth=1)])
    out = tmp_path / "explain"
    args = _args(checkpoint, _image(tmp_path), out)
    assert args.func is run_explain
    assert run_explain(args) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [f"query_{q:02d}.png" for q in range(4)]
    assert sorted(p.name for p in out.iterdir()) == sorted(pngs + ["index.json"])  # no temporary files left
    for name in pngs:
        with Image.open(out / name) as png:
            assert png.format == "PNG" and png.size[0] > 100
    index = json.loads((out / "index.json").read_text())
    assert index["grid"] == [8, 8] and index["crop"] == [64, 64]
    assert len(index["sentences"]) == 3
    assert [e["query"] for e in index["queries"]] == [0, 1, 2, 3]
    assert [e["file"] for e in index["queries"]] == pngs
    for entry in index["queries"]:
        assert entry["sentence"] == index["sentences"][entry["sentence_index"]]
        assert entry["sentence"].lower() in REPORT.lower()
        assert -1.0 <= entry["score"] <= 1.0
        assert all(0 <= c < 8 for c in entry["peak_cell"])
    # the scores are the best cosines between each query and the sentences
    from place_bench.model.checkpoint import build_model_from_checkpoint
    from place_bench.data.images import CXRTransform, read_image

    model, card = build_model_from_checkpoint(checkpoint)
    model.eval()
    image = CXRTransform(**card["config"]["data"]["pipeline"])(read_image(args.image))
    with torch.no_grad():
        seen = model.objectives[0].observe(model.pair_outputs(image[None], [REPORT]))
    expected = (seen["vpor"][0] @ seen["tpor"][0].T).max(dim=1)
    assert [e["score"] for e in index["queries"]] == pytest.approx(expected.values.tolist(), abs=1e-5)
    assert [e["sentence_index"] for e in index["queries"]] == expected.indices.tolist()
    assert "wrote 4 query maps" in capsys.readouterr().out


def test_explain_without_pcma_is_a_one_line_error(tmp_path):
    checkpoint = _checkpoint(tmp_path, [dict(type="global_infonce")])
    out = tmp_path / "explain"
    with pytest.raises(ValueError, match="no PCMA objective") as excinfo:
        run_explain(_args(checkpoint, _image(tmp_path), out))
    assert "\n" not in str(excinfo.value) and "global_infonce" in str(excinfo.value)
    assert not out.exists() or not any(out.iterdir())
