"""The example plugin's SigLIP objective (examples/plugin_package) against a hand computation.

The module is loaded from its file, so this test needs neither an installed
package nor the plugin manager: it checks the loss itself. Installation, the
entry point and a run through the CLI are tests/integration/test_example_plugin.py.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from place_bench.model.outputs import PairOutputs

SIGLIP_FILE = (Path(__file__).resolve().parents[3] / "examples" / "plugin_package" / "src"
               / "place_bench_example_encoder" / "siglip.py")


@pytest.fixture(scope="module")
def SigmoidPairLoss():
    spec = importlib.util.spec_from_file_location("_example_plugin_siglip", SIGLIP_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SigmoidPairLoss


# Three pairs in 4-d; pair 1 is well aligned, pair 2 is not, image 0 is closer to report 2.
V = np.array([[1.0, 0.2, -0.5, 0.0], [0.3, 0.9, 0.1, -0.2], [-0.4, 0.1, 0.8, 0.6]])
T = np.array([[0.1, -0.3, 0.9, 0.2], [0.2, 1.1, 0.0, -0.1], [0.9, 0.1, -0.2, 0.4]])


def outputs(v, t, dtype=torch.float64):
    return PairOutputs(image=None, text=None,
                       image_global=torch.tensor(v, dtype=dtype, requires_grad=True),
                       text_global=torch.tensor(t, dtype=dtype, requires_grad=True))


def hand_loss(v, t, temperature, bias):
    """The paper's definition, pair by pair: -1/|B| sum_ij log sigmoid(z_ij (t x_i·y_j + b))."""
    x = v / np.linalg.norm(v, axis=1, keepdims=True)
    y = t / np.linalg.norm(t, axis=1, keepdims=True)
    n = len(x)
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            logit = temperature * float(np.dot(x[i], y[j])) + bias
            total += math.log(1.0 / (1.0 + math.exp(-z * logit)))
    return -total / n


def hand_bias_gradient(v, t, temperature, bias):
    """d loss / d b = -1/|B| sum_ij z_ij sigmoid(-z_ij l_ij), since d/dl log sigmoid(z l) = z sigmoid(-z l)."""
    x = v / np.linalg.norm(v, axis=1, keepdims=True)
    y = t / np.linalg.norm(t, axis=1, keepdims=True)
    logits = temperature * x @ y.T + bias
    z = 2 * np.eye(len(x)) - 1
    return -np.sum(z / (1 + np.exp(z * logits))) / len(x)


@pytest.mark.parametrize("temperature, bias", [(10.0, -10.0), (1.0, 0.0), (3.5, 1.25)])
def test_matches_hand_computation(SigmoidPairLoss, temperature, bias):
    loss = SigmoidPairLoss(temperature_init=temperature, bias_init=bias, weight=2.0, name="x")
    # float32 parameters and inputs: the value to float32 precision
    got32 = loss(outputs(V, T, torch.float32))["loss_x"]
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(2.0 * hand_loss(V, T, temperature, bias), rel=1e-5)
    # in float64 the only difference left is t' = log(t) having been stored in float32
    loss = loss.double()
    t_stored = loss.temperature.item()
    assert t_stored == pytest.approx(temperature, rel=1e-6)
    got = loss(outputs(V, T))["loss_x"]
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(2.0 * hand_loss(V, T, t_stored, bias), rel=1e-10)


def test_paper_initialisation_and_checkpoint_names(SigmoidPairLoss):
    loss = SigmoidPairLoss()
    assert loss.log_temperature.item() == pytest.approx(math.log(10.0))
    assert loss.temperature.item() == pytest.approx(10.0)
    assert loss.bias.item() == -10.0
    assert set(loss.state_dict()) == {"log_temperature", "bias"}
    assert all(p.requires_grad for p in loss.parameters())
    assert not any(p.requires_grad for p in SigmoidPairLoss(learnable=False).parameters())


def test_embedding_scale_does_not_matter(SigmoidPairLoss):
    loss = SigmoidPairLoss(temperature_init=2.0, bias_init=-1.0)
    a = loss(outputs(V, T))["loss_siglip"]
    b = loss(outputs(3.0 * V, 0.5 * T))["loss_siglip"]
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_gradients_reach_embeddings_temperature_and_bias(SigmoidPairLoss):
    loss = SigmoidPairLoss(temperature_init=4.0, bias_init=-2.0).double()
    out = outputs(V, T)
    loss(out)["loss_siglip"].backward()
    assert out.image_global.grad.abs().sum() > 0 and out.text_global.grad.abs().sum() > 0
    expected = hand_bias_gradient(V, T, loss.temperature.item(), -2.0)
    assert loss.bias.grad.item() == pytest.approx(expected, rel=1e-10)
    assert loss.log_temperature.grad.abs().item() > 0


def test_one_pair_batch_has_only_the_positive_term(SigmoidPairLoss):
    loss = SigmoidPairLoss(temperature_init=1.0, bias_init=0.0)
    got = loss(outputs(V[:1], V[:1]))["loss_siglip"]  # identical embeddings: cosine 1, logit 1
    assert got.item() == pytest.approx(math.log(1 + math.exp(-1.0)), rel=1e-12)


def test_bad_arguments(SigmoidPairLoss):
    with pytest.raises(ValueError, match="temperature_init"):
        SigmoidPairLoss(temperature_init=0)
    with pytest.raises(ValueError, match="as many reports as images"):
        SigmoidPairLoss()(outputs(V, T[:2]))


def test_example_config_keeps_weight_decay_off_the_learnt_temperature_and_bias(SigmoidPairLoss):
    """The plugin's config names the loss scalars in mmengine's paramwise_cfg; the optimizer
    built from it (on a module named like the suite's PretrainModel: ``vlm.objectives.0.*``)
    gives them weight decay 0 and every other weight the schedule's."""
    from mmengine.optim import build_optim_wrapper
    from torch import nn

    from place_bench.config import load_config, to_plain

    cfg = load_config(SIGLIP_FILE.parents[2] / "configs" / "siglip_tiny.py", validate=False)
    model = nn.Module()
    model.vlm = nn.Module()
    model.vlm.objectives = nn.ModuleList([SigmoidPairLoss(temperature_init=10.0, bias_init=-10.0, learnable=True)])
    model.vlm.image_projection = nn.Linear(4, 4)
    wrapper = build_optim_wrapper(model, to_plain(cfg.optim_wrapper))
    decay = {name: group["weight_decay"] for name, p in model.named_parameters()
             for group in wrapper.optimizer.param_groups if any(p is q for q in group["params"])}
    base = float(cfg.optim_wrapper.optimizer.weight_decay)
    assert base > 0
    assert decay == {"vlm.objectives.0.log_temperature": 0.0, "vlm.objectives.0.bias": 0.0,
                     "vlm.image_projection.weight": base, "vlm.image_projection.bias": base}
