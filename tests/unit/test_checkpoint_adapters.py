"""Checkpoint adapters: foreign fixtures (each repository's key names, random tensors) load into
suite encoders with nothing missing; partial loads are refused; pickles need the opt-in."""

from __future__ import annotations

import argparse
import sys

import pytest
import torch

import foreign_checkpoints as fx
from place_bench.model.foreign import PickleRefusedError, read_foreign_checkpoint
from place_bench.model.importer import UnknownFormatError, import_foreign
from place_bench.model.load_report import ImportRefusedError
from place_bench.model.weights import PartialLoadError


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return fx.write_text_model(tmp_path_factory.mktemp("text") / "tiny_clinical_bert")


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    """adapter name -> a torch.save'd fixture of that format (written once per module)."""
    folder = tmp_path_factory.mktemp("foreign")
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = fx.write(fx.CASES[name][2](), folder / f"{name}.pth")
        return cache[name]

    return get


def run_import(name, path, text_model, **kwargs):
    fmt, _arch, _build, needs_text, options = fx.CASES[name]
    kwargs.setdefault("options", options)
    return import_foreign(path, fmt, text_model=text_model if needs_text else None, **kwargs)


@pytest.mark.parametrize("name", list(fx.CASES))
def test_fixture_loads_into_suite_encoders_with_no_missing_key(name, fixture_file, text_model):
    imported = run_import(name, fixture_file(name), text_model)
    report = imported.report
    assert imported.adapter.name == name  # the architecture was detected from the keys
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    model_keys = imported.model.state_dict().keys()
    encoder_keys = {k for k in model_keys if k.startswith(("image_encoder.", "text_encoder."))}
    assert encoder_keys <= set(report.loaded) | set(report.filled)
    assert set(report.loaded) | set(report.filled) == set(model_keys)
    needs_text = fx.CASES[name][3]
    assert (imported.model.text_encoder is not None) == needs_text
    assert imported.provenance["zero_shot"]["offered"] == needs_text
    with torch.no_grad():  # the model runs on the size the options give
        size = 64 if imported.adapter.arch == "vit_b16" else 96
        out = imported.model.encode_image(torch.randn(2, 3, size, size))
    assert out.global_embedding.shape[0] == 2 and torch.isfinite(out.global_embedding).all()


def test_mgca_weights_land_where_mgca_uses_them(fixture_file, text_model):
    source = fx.mgca("resnet50")
    imported = run_import("mgca_resnet50", fixture_file("mgca_resnet50"), text_model)
    state, report = imported.model.state_dict(), imported.report
    assert torch.equal(state["image_encoder.model.layer3.5.conv2.weight"], source["img_encoder_q.model.layer3.5.conv2.weight"])
    # GlobalEmbedding head.4 (BatchNorm1d affine=False) is the projection's output norm
    assert torch.equal(state["image_projection.layers.4.running_var"], source["img_encoder_q.global_embed.head.4.running_var"])
    # LocalEmbedding's 1x1 Conv1d is a linear layer on layer3 tokens (1024 channels)
    assert torch.equal(state["image_local_projection.layers.0.weight"], source["img_encoder_q.local_embed.head.0.weight"][..., 0])
    assert report.transformed["image_local_projection.layers.0.weight"] == "squeeze_kernel"
    # med.py BERT: no token-type embedding (zeros), every position embedded as row 0, cross-attention dropped
    assert not state["text_encoder.model.embeddings.token_type_embeddings.weight"].any()
    positions = state["text_encoder.model.embeddings.position_embeddings.weight"]
    assert torch.equal(positions, source["text_encoder_q.model.embeddings.position_embeddings.weight"][:1].expand_as(positions))
    assert torch.equal(state["text_encoder.model.encoder.layer.5.output.dense.weight"],
                       source["text_encoder_q.model.encoder.layer.5.output.dense.weight"])
    dropped = set(report.dropped)
    assert {"prototype_layer.weight", "patch_local_atten_layer.in_proj_weight",
            "text_encoder_q.model.embeddings.position_ids",
            "text_encoder_q.model.encoder.layer.0.crossattention.self.query.weight"} <= dropped
    assert imported.config["model"]["text_encoder"]["config"]["num_hidden_layers"] == 6
    assert imported.config["model"]["embed_dim"] == fx.EMBED


def test_mgca_projection_matches_mgca_global_embedding(fixture_file, text_model):
    """The suite's head computes MGCA's GlobalEmbedding in eval mode, output BatchNorm included."""
    source = fx.mgca("resnet50")
    model = run_import("mgca_resnet50", fixture_file("mgca_resnet50"), text_model).model
    x = torch.randn(4, 2048)
    g = lambda k: source[f"img_encoder_q.global_embed.head.{k}"]  # noqa: E731
    h = torch.nn.functional.linear(x, g("0.weight"), g("0.bias"))
    h = (h - g("1.running_mean")) / torch.sqrt(g("1.running_var") + 1e-5) * g("1.weight") + g("1.bias")
    h = torch.nn.functional.linear(h.relu(), g("3.weight"), g("3.bias"))
    expected = (h - g("4.running_mean")) / torch.sqrt(g("4.running_var") + 1e-5)
    with torch.no_grad():
        assert torch.allclose(model.image_projection(x), expected, atol=1e-5)


def test_benchx_mmseg_vit_renames_back_to_timm(fixture_file):
    source = fx.benchx_vit()
    imported = run_import("benchx_vit_b16", fixture_file("benchx_vit_b16"), None)
    state = imported.model.state_dict()
    assert torch.equal(state["image_encoder.model.blocks.1.attn.qkv.weight"], source["layers.1.attn.attn.in_proj_weight"])
    assert torch.equal(state["image_encoder.model.norm.bias"], source["ln1.bias"])
    assert torch.equal(state["image_projection.layers.0.weight"], torch.eye(fx.SMALL_VIT["width"]))


@pytest.mark.parametrize("name", ["mgca_resnet50", "gloria_resnet50", "benchx_vit_b16"])
def test_truncated_fixture_is_refused_with_the_missing_keys(name, tmp_path, text_model):
    fmt, _arch, build, needs_text, options = fx.CASES[name]
    state = build()
    cut = [k for k in state if ".layer4.2." in f".{k}" or ".blocks.1." in f".{k}" or k.startswith("layers.1.")]
    assert cut
    path = fx.write({k: v for k, v in state.items() if k not in cut}, tmp_path / "truncated.pth")
    with pytest.raises(ImportRefusedError) as err:
        import_foreign(path, fmt, text_model=text_model if needs_text else None, options=options)
    report = err.value.report
    assert report.missing_encoder and len(report.missing_encoder) == len(cut)
    assert all(k.startswith("image_encoder.model.") for k in report.missing_encoder)
    message = str(err.value)
    assert "encoder weights missing" in message and report.missing_encoder[0] in message and "--allow-missing" in message


def test_allow_missing_loads_and_says_so(tmp_path, text_model):
    state = fx.mgca("resnet50")
    del state["text_encoder_q.model.encoder.layer.5.output.dense.weight"]
    path = fx.write(state, tmp_path / "partial.pth")
    imported = import_foreign(path, "mgca", text_model=text_model, allow_missing=True)
    assert imported.report.missing == ["text_encoder.model.encoder.layer.5.output.dense.weight"]
    assert imported.report.overrides == ["allow_missing"]
    assert imported.config["method"]["label"].endswith("[partial load]")
    assert imported.provenance["flags"]["allow_missing"] is True


def test_unexpected_keys_are_refused_unless_allowed(tmp_path, text_model):
    state = fx.gloria()
    state["gloria.img_encoder.mystery.weight"] = torch.zeros(3)
    path = fx.write(state, tmp_path / "extra.pth")
    with pytest.raises(ImportRefusedError, match="unexpected file keys: img_encoder.mystery.weight"):
        import_foreign(path, "gloria")
    imported = import_foreign(path, "gloria", allow_unexpected=True)
    assert imported.report.overrides == ["allow_unexpected"]


def test_shape_mismatch_is_refused_even_with_overrides(tmp_path, fixture_file):
    folder = fx.write_text_model(tmp_path / "wider")
    config = (folder / "config.json").read_text().replace('"hidden_size": 32', '"hidden_size": 64')
    (folder / "config.json").write_text(config)
    with pytest.raises(ImportRefusedError, match="shape mismatches"):
        import_foreign(fixture_file("mgca_resnet50"), "mgca", text_model=folder, allow_missing=True,
                       allow_unexpected=True)


def test_text_folder_is_required_and_named(fixture_file, tmp_path):
    with pytest.raises(PartialLoadError, match="Bio_ClinicalBERT.*--text-model DIR"):
        import_foreign(fixture_file("mgca_resnet50"), "mgca")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PartialLoadError, match="config.json"):
        import_foreign(fixture_file("mgca_resnet50"), "mgca", text_model=tmp_path / "empty")


def test_unknown_format_and_unrecognised_file(fixture_file):
    with pytest.raises(UnknownFormatError, match="formats: benchx, convirt, gloria, mgca"):
        import_foreign(fixture_file("gloria_resnet50"), "medclip")
    with pytest.raises(UnknownFormatError, match="no 'mgca' adapter recognises this file"):
        import_foreign(fixture_file("gloria_resnet50"), "mgca")


# -- pickles -------------------------------------------------------------------------------------

def test_lightning_checkpoint_needs_the_pickle_opt_in(tmp_path, text_model):
    path = fx.write(fx.mgca("resnet50"), tmp_path / "mgca.ckpt", as_lightning=True)
    with pytest.raises(PickleRefusedError, match=r"argparse\.Namespace.*--allow-pickle.*trust"):
        read_foreign_checkpoint(path)
    with pytest.raises(PickleRefusedError):
        import_foreign(path, "mgca", text_model=text_model)
    imported = import_foreign(path, "mgca", text_model=text_model, allow_pickle=True)
    source = imported.provenance["source"]
    assert source["container"] == "lightning" and source["pickled"] is True
    assert source["meta"]["pytorch-lightning_version"] == "1.5.9"
    assert imported.report.missing == []


def test_plain_state_dicts_and_safetensors_need_no_opt_in(tmp_path):
    from safetensors.torch import save_file

    state = fx.benchx_vit()
    torch.save({"model": state}, tmp_path / "benchx.pth")
    read = read_foreign_checkpoint(tmp_path / "benchx.pth")
    assert read.container == "model" and not read.pickled and set(read.state) == set(state)
    assert not read_foreign_checkpoint(tmp_path / "benchx.pth", allow_pickle=True).pickled  # never unpickled when not needed
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "benchx.safetensors"))
    assert read_foreign_checkpoint(tmp_path / "benchx.safetensors").container == "plain"


def test_trusted_pickle_of_an_unimportable_class_loads_with_a_stand_in(tmp_path, monkeypatch):
    """A Lightning file pickles classes of packages that may not be installed here (pytorch_lightning)."""
    import types

    package, module = types.ModuleType("not_installed_lightning"), types.ModuleType("not_installed_lightning.parsing")
    AttributeDict = type("AttributeDict", (dict,), {"__module__": module.__name__})
    module.AttributeDict = AttributeDict
    monkeypatch.setitem(sys.modules, package.__name__, package)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    payload = {"state_dict": fx.benchx_vit(), "pytorch-lightning_version": "2.0",
               "hyper_parameters": AttributeDict(lr=0.1), "extra": argparse.Namespace(a=1)}
    torch.save(payload, tmp_path / "x.ckpt")
    monkeypatch.delitem(sys.modules, module.__name__)
    monkeypatch.delitem(sys.modules, package.__name__)
    with pytest.raises(PickleRefusedError):
        read_foreign_checkpoint(tmp_path / "x.ckpt")
    read = read_foreign_checkpoint(tmp_path / "x.ckpt", allow_pickle=True)
    assert read.stand_ins == ["not_installed_lightning.parsing.AttributeDict"]
    assert read.container == "lightning" and len(read.state) == len(fx.benchx_vit())


# -- registry and plan-time identity ---------------------------------------------------------------

def test_adapters_are_a_plugin_kind():
    from place_bench import registry as registries

    adapters = {c.name: c for c in registries.components("checkpoint_adapter")}
    assert set(adapters) == set(fx.CASES)
    assert adapters["mgca_resnet50"].plugin == "mgca_checkpoints"
    assert registries.get_component("head", "sequential_projection").plugin == "checkpoint_heads"
    declaration = adapters["mgca_vit_b16"].obj.describe()
    assert declaration["text"]["num_layers"] == 6 and declaration["model"]["image_encoder"]["model_name"] == "vit_base_patch16_224"


def test_direct_subject_identity_matches_the_plan(fixture_file, text_model):
    from place_bench.engine.evaluate import foreign_subject_info, load_subject

    foreign = dict(format="gloria", options=fx.RESNET_OPTIONS)
    info = foreign_subject_info(fixture_file("gloria_resnet50"), foreign)
    subject = load_subject(fixture_file("gloria_resnet50"), foreign=foreign)
    assert info == {"sha256": subject.sha256, "encoders": {"image"}} and subject.sha256.startswith("import:")
    assert subject.load_report["source"] == "foreign checkpoint" and subject.load_report["strict"] is True
    assert subject.load_report["counts"]["missing"] == 0 and subject.method["imported"] is True
    assert subject.config["data"]["pipeline"]["crop"] == 32
    assert foreign_subject_info("nowhere.ckpt", dict(format="mgca"))["encoders"] == {"image", "text"}
