"""Which config changes make a trained checkpoint stale (place_bench.engine.recipe)."""

from __future__ import annotations

from place_bench.engine.recipe import flatten, recipe_differences

TRAINED = {
    "model": {"objectives": [{"type": "global_infonce", "temperature": 0.07}], "image_encoder": {"img_size": (64, 64)}},
    "train_cfg": {"max_iters": 600},
    "pretrain": {"log_interval": 50, "amp": "auto"},
    "method": {"name": "ITA", "label": "ITA"},
    "data": {"num_workers": 0, "batch_size": 32},
    "_iters": 600,
}


def changed(**edits):
    import copy

    cfg = copy.deepcopy(TRAINED)
    for dotted, value in edits.items():
        *path, last = dotted.split("__")
        node = cfg
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return cfg


def test_flatten_names_list_items_by_index():
    assert flatten({"a": [{"b": 1}, 2], "c": {}}) == {"a.0.b": 1, "a.1": 2, "c": {}}


def test_the_same_config_as_json_is_not_stale():
    # The card stores JSON: the tuple comes back a list.
    trained = changed(model__image_encoder__img_size=[64, 64])
    assert recipe_differences(trained, TRAINED) == []


def test_bookkeeping_keys_do_not_make_a_checkpoint_stale():
    now = changed(pretrain__log_interval=10, method__label="ITA (renamed)", data__num_workers=4, _iters=601,
                  work_dir="elsewhere")
    assert recipe_differences(TRAINED, now) == []


def test_training_changes_are_listed_with_both_values():
    now = changed(model__objectives__0__temperature=0.1, train_cfg__max_iters=1000, pretrain__amp=KeyError,
                  seed=3)
    assert recipe_differences(TRAINED, now) == [
        "model.objectives.0.temperature: trained 0.07, now 0.1",
        'pretrain.amp: trained "auto", now <absent>',
        "seed: trained <absent>, now 3",
        "train_cfg.max_iters: trained 600, now 1000",
    ]


def test_an_added_objective_is_a_difference():
    now = changed()
    now["model"]["objectives"].append({"type": "place_cce"})
    assert recipe_differences(TRAINED, now) == ['model.objectives.1.type: trained <absent>, now "place_cce"']
