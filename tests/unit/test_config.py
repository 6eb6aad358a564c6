"""Config loading: _base_ inheritance, --cfg-options, validation errors naming key and file."""

from pathlib import Path

import pytest

from place_bench import api
from place_bench.config import ConfigError, resolve_config_path

REPO = Path(__file__).resolve().parents[2]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def chain(tmp_path):
    """base.py (model) <- child.py (overrides the width, adds a schedule)."""
    write(tmp_path, "base.py", (
        "model = dict(\n"
        "    image_encoder=dict(type='timm', model_name='resnet10t'),\n"
        "    embed_dim=16,\n"
        ")\n"
    ))
    return write(tmp_path, "child.py", (
        "_base_ = ['./base.py']\n"
        "model = dict(embed_dim=24)\n"
        "train_cfg = dict(by_epoch=False, max_iters=3)\n"
        "_local_variable = 5\n"
    ))


def test_inheritance_merges_and_overrides(chain):
    cfg = api.load_config(chain)
    assert cfg.model.embed_dim == 24
    assert cfg.model.image_encoder.model_name == "resnet10t"
    assert cfg.train_cfg.max_iters == 3


def test_cfg_options_override_nested_keys(chain):
    cfg = api.load_config(chain, {"model.image_encoder.model_name": "resnet18", "model.embed_dim": 8})
    assert cfg.model.image_encoder.model_name == "resnet18"
    assert cfg.model.embed_dim == 8


def test_unknown_component_key_names_the_defining_base_file(tmp_path, chain):
    write(tmp_path, "base.py", (
        "model = dict(image_encoder=dict(type='timm', model_name='resnet10t', pretrianed_path=None))\n"
    ))
    with pytest.raises(ConfigError) as err:
        api.load_config(chain)
    message = str(err.value)
    assert "base.py" in message and "child.py" not in message
    assert "model.image_encoder.pretrianed_path" in message
    assert "did you mean 'pretrained_path'" in message
    assert "\n" not in message


def test_wrong_key_from_cfg_options_is_blamed_on_the_option(chain):
    with pytest.raises(ConfigError, match=r"--cfg-options model\.embed_dimm.*unknown key 'model\.embed_dimm'.*did you mean 'embed_dim'"):
        api.load_config(chain, {"model.embed_dimm": 4})


def test_unknown_top_level_key(chain, tmp_path):
    bad = write(tmp_path, "typo.py", "_base_ = ['./child.py']\nmodle = dict()\n")
    with pytest.raises(ConfigError, match=r"typo\.py: unknown top-level key 'modle' \(did you mean 'model'\?\)"):
        api.load_config(bad)


def test_missing_required_key_names_key_and_file(tmp_path):
    bad = write(tmp_path, "no_name.py", "model = dict(image_encoder=dict(type='timm'))\n")
    with pytest.raises(ConfigError, match=r"no_name\.py: missing key 'model\.image_encoder\.model_name' required by image_encoder 'timm'"):
        api.load_config(bad)


def test_missing_model_section_key(tmp_path):
    bad = write(tmp_path, "no_image.py", "model = dict(embed_dim=4)\n")
    with pytest.raises(ConfigError, match=r"missing key 'model\.image_encoder'"):
        api.load_config(bad)


def test_unknown_type_lists_close_matches(tmp_path):
    bad = write(tmp_path, "bad_type.py", "model = dict(image_encoder=dict(type='timmm', model_name='x'))\n")
    with pytest.raises(ConfigError, match=r"bad_type\.py: model\.image_encoder\.type: unknown image_encoder type 'timmm'.*close matches: timm"):
        api.load_config(bad)


def test_missing_base_file_is_named(tmp_path):
    bad = write(tmp_path, "orphan.py", "_base_ = ['./nowhere.py']\n")
    with pytest.raises(ConfigError, match=r"orphan\.py: _base_ file .*nowhere\.py.* does not exist"):
        api.load_config(bad)


def test_syntax_error_is_one_line_with_file_and_line(tmp_path):
    bad = write(tmp_path, "broken.py", "model = dict(\n")
    with pytest.raises(ConfigError, match=r"broken\.py:\d+: syntax error"):
        api.load_config(bad)


def test_names_resolve_under_configs():
    assert resolve_config_path("eval/embed_tiny") == REPO / "configs" / "eval" / "embed_tiny.py"
    with pytest.raises(ConfigError, match="not found"):
        resolve_config_path("eval/no_such_config")


def test_every_shipped_config_validates():
    from place_bench import config

    for path in sorted((REPO / "configs").rglob("*.py")):
        if "_base_" in path.parts:  # bases are parts: unknown keys are errors, missing ones are not
            config.load_config(path, partial=True)
        else:
            api.load_config(path)


def test_config_plugin_dirs_key_loads_plugins_before_validation(tmp_path):
    write(tmp_path, "myplugins/widget.py", (
        "from torch import nn\nfrom place_bench.hookspecs import hookimpl\n"
        "class Widget(nn.Module):\n"
        "    def __init__(self, width: int = 4):\n"
        "        super().__init__(); self.feature_dim = width\n"
        "@hookimpl\ndef place_bench_register(registrar):\n"
        "    registrar.add('image_encoder', 'widget', Widget)\n"
    ))
    cfg_path = write(tmp_path, "uses_plugin.py", (
        "plugin_dirs = ['myplugins']\nmodel = dict(image_encoder=dict(type='widget', width=8))\n"
    ))
    cfg = api.load_config(cfg_path)
    assert cfg.model.image_encoder.type == "widget"
    bad = write(tmp_path, "uses_plugin_badly.py", (
        "plugin_dirs = ['myplugins']\nmodel = dict(image_encoder=dict(type='widget', widht=8))\n"
    ))
    with pytest.raises(ConfigError, match="did you mean 'width'"):
        api.load_config(bad)


def test_config_show_cli(run_cli, chain):
    result = run_cli("config", "show", str(chain), "--cfg-options", "model.embed_dim=7")
    assert result.returncode == 0, result.stderr
    assert "embed_dim=7" in result.stdout.replace(" ", "")
    assert "resnet10t" in result.stdout
    bad = run_cli("config", "show", str(chain), "--cfg-options", "model.embed_dimm=7")
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "model.embed_dimm" in bad.stderr


def test_builtin_prefix_bases_resolve_from_any_folder_and_through_a_chain(tmp_path):
    """A plugin's config outside the suite inherits the suite's _base_ files by name, also through
    its own relative base; the loaded config keeps the user's file name."""
    from place_bench.config import load_config

    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "model.py").write_text(
        '_base_ = ["place_bench::_base_/models/tiny_vit_bert.py"]\nmodel = dict(embed_dim=48)\n')
    top = tmp_path / "method.py"
    top.write_text('_base_ = [\n    "./base/model.py",\n    "place_bench::_base_/schedules/tiny_iters.py",\n]\n'
                   'method = dict(name="m", label="M")\n')
    cfg = load_config(top, validate=False)
    assert cfg.model.image_encoder.model_name == "vit_tiny_patch16_224" and cfg.model.embed_dim == 48
    assert cfg.train_cfg.max_iters == 60 and cfg.filename == str(top)
    (tmp_path / "bad.py").write_text('_base_ = ["place_bench::_base_/models/nope.py"]\n')
    with pytest.raises(ConfigError, match="nope.py' does not exist"):
        load_config(tmp_path / "bad.py", validate=False)
