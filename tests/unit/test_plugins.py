"""Plugin discovery: entry points, folders, duplicates, failures, strict mode."""

import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from place_bench import registry as registries
from place_bench.plugin_manager import (
    PluginLoadError,
    PluginLoadWarning,
    get_plugin_manager,
)

REPO = Path(__file__).resolve().parents[2]

GOOD = '''
from torch import nn
from place_bench.hookspecs import hookimpl

class Folded(nn.Module):
    def __init__(self, k: int = 2):
        super().__init__()
        self.k = k

@hookimpl
def place_bench_register(registrar):
    registrar.add("metric", "folded_metric", Folded)
'''


def test_builtin_plugins_come_from_the_entry_point_group():
    manager = get_plugin_manager()
    assert registries.get_component("image_encoder", "timm").plugin == "timm_image_encoders"
    assert registries.get_component("text_encoder", "hf_text").plugin == "hf_text_encoders"
    assert "entry point" in manager.origins["timm_image_encoders"]
    assert "place-bench" in manager.origins["timm_image_encoders"]


def test_folder_plugin_registers_and_builds(write_plugin):
    folder = write_plugin("folded", GOOD)
    get_plugin_manager([folder])
    info = registries.get_component("metric", "folded_metric")
    assert info.plugin == "folded"
    assert registries.build("metric", dict(type="folded_metric", k=5)).k == 5


def test_package_folder_plugin_with_relative_import(tmp_path):
    pkg = tmp_path / "plugs" / "pkgplugin"
    pkg.mkdir(parents=True)
    (pkg / "impl.py").write_text("from torch import nn\nclass Thing(nn.Module):\n    pass\n")
    (pkg / "__init__.py").write_text(
        "from place_bench.hookspecs import hookimpl\nfrom .impl import Thing\n"
        "@hookimpl\ndef place_bench_register(registrar):\n    registrar.add('task', 'thing', Thing)\n"
    )
    get_plugin_manager([tmp_path / "plugs"])
    assert registries.get_component("task", "thing").plugin == "pkgplugin"


def test_duplicate_names_across_plugins_fail_naming_both(write_plugin):
    write_plugin("alpha", GOOD)
    folder = write_plugin("beta", GOOD)
    with pytest.raises(registries.DuplicateComponentError) as err:
        get_plugin_manager([folder])
    assert "'alpha'" in str(err.value) and "'beta'" in str(err.value)


def test_duplicate_of_a_builtin_name_fails(write_plugin):
    folder = write_plugin(
        "shadow",
        "from place_bench.hookspecs import hookimpl\n"
        "@hookimpl\ndef place_bench_register(registrar):\n    registrar.add('image_encoder', 'timm', object)\n",
    )
    with pytest.raises(registries.DuplicateComponentError, match="timm_image_encoders.*shadow"):
        get_plugin_manager([folder])


@pytest.mark.parametrize(
    "source, where",
    [
        ("raise RuntimeError('boom at import')\n", "boom at import"),
        (
            "from place_bench.hookspecs import hookimpl\n"
            "@hookimpl\ndef place_bench_register(registrar):\n"
            "    registrar.add('metric', 'half_done', object)\n"
            "    raise ValueError('boom in register')\n",
            "boom in register",
        ),
        (
            "from place_bench.hookspecs import hookimpl\n"
            "@hookimpl\ndef place_bench_registr(registrar):\n    pass\n",
            "place_bench_registr",
        ),
    ],
    ids=["import", "register", "unknown-hook"],
)
def test_raising_plugin_is_skipped_by_name_or_fatal_when_strict(write_plugin, source, where):
    write_plugin("good_one", GOOD)
    folder = write_plugin("broken", source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager = get_plugin_manager([folder])
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert len(messages) == 1 and "'broken'" in messages[0] and where in messages[0]
    assert [f.name for f in manager.failures] == ["broken"]
    # The good plugin is unaffected and nothing of the broken one stays registered.
    assert registries.get_component("metric", "folded_metric").plugin == "good_one"
    assert all(c.plugin != "broken" for c in registries.components())

    from place_bench.plugin_manager import reset_plugin_manager

    reset_plugin_manager()
    with pytest.raises(PluginLoadError, match="'broken'.*" + where):
        get_plugin_manager([folder], strict=True)


def test_missing_plugin_folder_is_named(tmp_path):
    with pytest.raises(PluginLoadError, match="does-not-exist"):
        get_plugin_manager([tmp_path / "does-not-exist"])


def test_plugin_path_environment_variable(write_plugin, monkeypatch):
    folder = write_plugin("from_env", GOOD)
    monkeypatch.setenv("PLACE_BENCH_PLUGIN_PATH", str(folder))
    get_plugin_manager()
    assert registries.get_component("metric", "folded_metric").plugin == "from_env"


@pytest.fixture(scope="module")
def example_package(tmp_path_factory):
    """The out-of-tree example plugin package, pip-installed into a private folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(REPO / "examples" / "plugin_package")],
        check=True, capture_output=True, timeout=300,
    )
    return target


def test_out_of_tree_package_found_through_entry_point(example_package, monkeypatch, run_cli):
    monkeypatch.syspath_prepend(str(example_package))
    manager = get_plugin_manager()
    info = registries.get_component("image_encoder", "example_conv")
    assert info.plugin == "example_encoder"
    assert "place-bench-example-encoder" in manager.origins["example_encoder"]

    result = run_cli("plugins", "--kind", "image_encoder", env={"PYTHONPATH": str(example_package)})
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if "example_conv" in l)
    assert "example_encoder" in line


def test_out_of_tree_encoder_builds_from_config(example_package, monkeypatch, tmp_path):
    import torch

    from place_bench import api

    monkeypatch.syspath_prepend(str(example_package))
    cfg = api.load_config(REPO / "examples" / "plugin_package" / "example_model.py")
    model = api.build_model(cfg)
    emb = model.embed_image(torch.rand(2, 3, 32, 32))
    assert emb.shape == (2, 32)
    assert type(model.image_encoder).__name__ == "ExampleConvEncoder"


def test_wheel_installs_no_generic_top_level_names(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )
    wheel = next(tmp_path.glob("place_bench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert all(t == "place_bench" or t.startswith("place_bench-") for t in tops), tops
    # Built-in plugins travel inside place_bench, with their entry points.
    assert "place_bench/plugins/encoders/timm_image.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[place_bench]" in text and "place_bench.plugins.encoders.timm_image" in text
    # Configs ship as package data, so an installed suite can resolve config names.
    assert "place_bench/configs/_base_/models/tiny_vit_bert.py" in names


def test_every_source_package_is_listed_in_pyproject():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(project["packages"])
    found = set()
    for root, prefix in (("place_bench", "place_bench"), ("plugins", "place_bench.plugins")):
        for init in (REPO / root).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / root).parts
            found.add(".".join((prefix, *rel)))
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
