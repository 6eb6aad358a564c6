"""ConVIRT checkpoints in MGCA's naming (github.com/HKU-MedAI/MGCA, ``mgca/models/convirt/``).

ConVIRT has no official code; the MGCA repository's re-implementation is the public one, so
its naming is used: ``img_encoder.model.*`` (ResNet-50, the module's default, or ViT-B/16, the
training script's default), ``img_encoder.{global,local}_embed.head.*``, ``text_encoder.model.*``
(med.py BERT) and ``text_encoder.{global,local}_embed.head.*``. ConVIRT's loss reads only the
global heads: the local heads are never trained and are dropped.
"""

from __future__ import annotations

from place_bench.hookspecs import hookimpl
from place_bench.model.adapters import CheckpointAdapter, Drop
from place_bench.plugins.checkpoints import _naming as n

REFERENCE = "github.com/HKU-MedAI/MGCA: mgca/models/convirt/convirt_module.py, mgca/models/backbones/encoder.py"

UNTRAINED = Drop(r"^(img|text)_encoder\.local_embed\.",
                 "local embedding heads that ConVIRT's loss never reads (left at their initial values)")


def convirt_adapter(arch: str) -> CheckpointAdapter:
    label = "ResNet-50" if arch == "resnet50" else "ViT-B/16"
    return CheckpointAdapter(
        name=f"convirt_{arch}",
        format="convirt",
        method=dict(name="ConVIRT", label=f"ConVIRT (imported, {label})", reference="Zhang et al., arXiv 2010.00747",
                    variant="MGCA repository re-implementation"),
        source_format="PyTorch Lightning checkpoint (.ckpt) of MGCA's ConVIRT module, or its state dict",
        reference=REFERENCE,
        drops=(UNTRAINED, *n.med_bert_drops("text_encoder")),
        **n.mgca_repository_fields("img_encoder", "text_encoder", arch, local_heads=False, method="MGCA's ConVIRT"),
    )


@hookimpl
def place_bench_register(registrar):
    for arch in ("resnet50", "vit_b16"):
        registrar.add("checkpoint_adapter", f"convirt_{arch}", convirt_adapter(arch))
