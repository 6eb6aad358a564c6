"""The command line: help, plugin listing, one-line errors."""


def test_help_lists_the_commands(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("plugins", "config", "checkpoint", "embed"):
        assert command in result.stdout


def test_plugins_lists_timm_and_transformers_encoders_with_their_plugin(run_cli):
    result = run_cli("plugins")
    assert result.returncode == 0, result.stderr
    rows = {tuple(line.split()[:3]) for line in result.stdout.splitlines() if line.strip()}
    assert ("image_encoder", "timm", "timm_image_encoders") in rows
    assert ("text_encoder", "hf_text", "hf_text_encoders") in rows
    assert ("head", "projection", "projection_heads") in rows


def test_plugins_kind_filter_and_unknown_kind(run_cli):
    result = run_cli("plugins", "--kind", "text_encoder")
    assert result.returncode == 0
    kinds = {line.split()[0] for line in result.stdout.splitlines()[1:] if line.startswith(("image", "text", "head"))}
    assert kinds == {"text_encoder"}
    bad = run_cli("plugins", "--kind", "text_encoders")
    assert bad.returncode == 1
    assert "did you mean text_encoder" in bad.stderr and bad.stderr.count("\n") == 1


def test_plugin_dir_flag_and_strict(run_cli, write_plugin):
    folder = write_plugin("explodes", "raise ImportError('missing dependency foo')\n")
    lenient = run_cli("--plugin-dir", str(folder), "plugins")
    assert lenient.returncode == 0
    assert "explodes" in lenient.stderr and "missing dependency foo" in lenient.stderr
    strict = run_cli("--plugin-dir", str(folder), "--strict", "plugins")
    assert strict.returncode == 1 and "'explodes'" in strict.stderr


def test_command_line_task_overrides_win_over_per_dataset_settings():
    from place_bench.commands.evaluate import override_by_dataset

    section = {"type": "rrg", "epochs": 5, "by_dataset": {"iu_xray": {"epochs": 100, "max_length": 60}, "x": {}}}
    out = override_by_dataset(section, {"task.epochs": 2, "task.decoder.num_layers": 1})
    assert out["by_dataset"]["iu_xray"] == {"epochs": 2, "max_length": 60} and out["by_dataset"]["x"] == {}
