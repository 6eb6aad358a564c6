"""GLoRIA checkpoints (github.com/marshuang80/gloria): the Lightning ``PretrainModel``.

Keys: ``gloria.img_encoder.model.*`` (torchvision ResNet-50), ``gloria.img_encoder.global_embedder``
(Linear 2048 -> 768), ``gloria.img_encoder.local_embedder.weight`` (1x1 Conv2d 1024 -> 768, no
bias) and ``gloria.text_encoder.model.*`` (Hugging Face Bio_ClinicalBERT with its pooler).
``load_gloria`` strips ``gloria.``; so does this adapter.

The import is image-only: GLoRIA's report embedding is the mean over all word slots (padding
included) of word features summed over the last four layers, with no projection, and its
zero-shot scores add local word-region similarities. Neither fits the suite's joint-space
contract (a projected [CLS] feature), so the text side is dropped (listed in the load report)
and zero-shot, retrieval and probes are not offered for GLoRIA imports.
"""

from __future__ import annotations

from place_bench.hookspecs import hookimpl
from place_bench.model.adapters import CheckpointAdapter, Dim, Drop, KeyRule
from place_bench.plugins.checkpoints import _naming as n

REFERENCE = "github.com/marshuang80/gloria: gloria/models/vision_model.py, text_model.py, gloria/gloria.py"

NO_JOINT_SPACE = ("GLoRIA's report embedding (mean over word slots of the last four layers, no projection) and its "
                  "global+local zero-shot scores have no counterpart in the suite's joint space; the text side is "
                  "dropped, so zero-shot, retrieval and probes are not offered")

GLORIA_RESNET50 = CheckpointAdapter(
    name="gloria_resnet50",
    format="gloria",
    arch="resnet50",
    method=dict(name="GLoRIA", label="GLoRIA (imported, ResNet-50)", reference="Huang et al., ICCV 2021",
                variant="official checkpoint"),
    source_format="PyTorch Lightning checkpoint (.ckpt) of GLoRIA's PretrainModel, or its state dict",
    reference=REFERENCE,
    model=dict(
        image_encoder=n.RESNET50,
        embed_dim=Dim("img_encoder.global_embedder.weight"),
        image_projection=dict(type="projection"),
        image_local_projection=dict(type="projection", bias=False),
    ),
    prefixes=("gloria.", "module.gloria."),
    rules=(
        *n.image_rules("img_encoder"),
        KeyRule(r"^img_encoder\.global_embedder\.", "image_projection.layers.0."),
        KeyRule(r"^img_encoder\.local_embedder\.weight$", "image_local_projection.layers.0.weight", "squeeze_kernel"),
    ),
    drops=(Drop(r"^text_encoder\.", "the text side: " + NO_JOINT_SPACE),),
    detect=("img_encoder.model.conv1.weight", "img_encoder.global_embedder.weight"),
    pipeline=n.MGCA_PIPELINE,
    notes=(n.UPSAMPLE_NOTE.format(method="GLoRIA"),),
    zero_shot=NO_JOINT_SPACE,
)


@hookimpl
def place_bench_register(registrar):
    registrar.add("checkpoint_adapter", "gloria_resnet50", GLORIA_RESNET50)
