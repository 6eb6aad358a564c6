import pytest
from torch import nn

from place_bench import registry as registries
from place_bench.plugin_manager import Registrar


class Widget(nn.Module):
    def __init__(self, width: int, depth: int = 1):
        super().__init__()
        self.width, self.depth = width, depth


def test_build_from_type_dict_fills_defaults():
    Registrar("test_plugin").add("image_encoder", "widget", Widget)
    built = registries.build("image_encoder", dict(type="widget", width=3), depth=4)
    assert isinstance(built, Widget) and (built.width, built.depth) == (3, 4)
    assert registries.get_component("image_encoder", "widget").plugin == "test_plugin"


def test_unknown_type_names_registry_and_close_matches():
    with pytest.raises(registries.UnknownComponentError) as err:
        registries.build("image_encoder", dict(type="tim", model_name="resnet18"))
    message = str(err.value)
    assert "place_bench.image_encoder" in message
    assert "close matches: timm" in message


def test_unknown_kind_lists_kinds():
    with pytest.raises(registries.UnknownKindError, match="did you mean image_encoder"):
        registries.registry_for("image_encoders")


def test_same_name_twice_names_both_plugins():
    Registrar("first_plugin").add("objective", "infonce", Widget)
    with pytest.raises(registries.DuplicateComponentError) as err:
        Registrar("second_plugin").add("objective", "infonce", Widget)
    assert "'first_plugin'" in str(err.value) and "'second_plugin'" in str(err.value)


def test_same_name_in_different_kinds_is_allowed():
    Registrar("p").add("metric", "auroc", Widget)
    Registrar("p").add("task", "auroc", Widget)
    assert {c.kind for c in registries.components() if c.name == "auroc"} == {"metric", "task"}


def test_registries_use_the_place_bench_scope():
    assert {r.scope for r in registries.REGISTRIES.values()} == {"place_bench"}
