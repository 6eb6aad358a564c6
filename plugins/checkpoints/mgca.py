"""MGCA checkpoints (github.com/HKU-MedAI/MGCA): the Lightning module ``MGCA``.

Keys (``mgca/models/mgca/mgca_module.py``): ``img_encoder_q.model.*`` (torchvision ResNet-50 or
their ViT-B/16), ``img_encoder_q.{global,local}_embed.head.*``, ``text_encoder_q.model.*``
(med.py BERT, 6 layers), ``text_encoder_q.{global,local}_embed.head.*``,
``{patch,word}_local_atten_layer.*`` and ``prototype_layer.weight``. The ``_q`` suffix is a
naming leftover: no momentum (``_k``) encoders exist in any commit of the public repository.
"""

from __future__ import annotations

from place_bench.hookspecs import hookimpl
from place_bench.model.adapters import CheckpointAdapter, Drop
from place_bench.plugins.checkpoints import _naming as n

REFERENCE = "github.com/HKU-MedAI/MGCA: mgca/models/mgca/mgca_module.py, mgca/models/backbones/encoder.py, med.py, vits.py"

PRETRAINING_ONLY = (
    Drop(r"^prototype_layer\.", "MGCA's cross-modal prototype layer (CPA): a pretraining objective's state"),
    Drop(r"^(patch|word)_local_atten_layer\.",
         "MGCA's local cross-attention layers: pretraining only, and unused with use_local_atten=False (default)"),
)


def mgca_adapter(arch: str) -> CheckpointAdapter:
    label = "ResNet-50" if arch == "resnet50" else "ViT-B/16"
    return CheckpointAdapter(
        name=f"mgca_{arch}",
        format="mgca",
        method=dict(name="MGCA", label=f"MGCA (imported, {label})", reference="Wang et al., NeurIPS 2022",
                    variant="official checkpoint"),
        source_format="PyTorch Lightning checkpoint (.ckpt) of the MGCA module, or its state dict",
        reference=REFERENCE,
        drops=(*PRETRAINING_ONLY, *n.med_bert_drops("text_encoder_q")),
        **n.mgca_repository_fields("img_encoder_q", "text_encoder_q", arch, local_heads=True, method="MGCA"),
    )


@hookimpl
def place_bench_register(registrar):
    for arch in ("resnet50", "vit_b16"):
        registrar.add("checkpoint_adapter", f"mgca_{arch}", mgca_adapter(arch))
