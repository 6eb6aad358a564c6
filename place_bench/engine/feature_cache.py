"""Frozen-encoder features, extracted once and cached on disk.

The linear probe trains many small heads (fractions x seeds) on the same frozen features, so
each (checkpoint, manifest, split, transform, feature kind) is encoded once. A cache entry is
one ``.safetensors`` file ``<cache_dir>/<key>.safetensors`` holding

* ``features``: float32 ``(N, D)``, the image encoder's global embedding (before any projection
  head: ResNet pooled features, ViT CLS token) of the split's rows, eval mode, no gradient;
* ``targets``: the dataset's targets, stacked (float32 ``(N, L)`` or int64 ``(N,)``);

and the row ``sample_ids`` (JSON, in the metadata) so that label fractions select rows by id.
The key is the SHA-256 of the canonical JSON of: subject id (checkpoint SHA-256), manifest
fingerprint, split, the dataset's transform settings, target settings and the feature kind, so a
changed checkpoint, manifest or pipeline never reads stale features. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import torch

from place_bench.io import atomic_write_bytes

__all__ = ["CachedFeatures", "cache_key", "extract_features", "cached_features"]

FEATURE_KIND = "image_encoder.global_embedding"


class CachedFeatures:
    """Features, targets and sample ids of one split (see the module docstring)."""

    def __init__(self, features: torch.Tensor, targets: torch.Tensor, sample_ids: list[str], hit: bool):
        self.features, self.targets, self.sample_ids, self.hit = features, targets, sample_ids, hit
        self._index = {s: i for i, s in enumerate(sample_ids)}

    def rows(self, sample_ids) -> torch.Tensor:
        """Row positions of ``sample_ids`` (int64); a missing id is an error."""
        try:
            return torch.tensor([self._index[s] for s in sample_ids], dtype=torch.long)
        except KeyError as exc:
            raise KeyError(f"sample {exc.args[0]!r} is not in the cached split") from None


def cache_key(subject_id: str, fingerprint: str, split: str, settings: Mapping[str, Any]) -> str:
    blob = json.dumps(
        {"subject": subject_id, "manifest": fingerprint, "split": split, "settings": settings, "kind": FEATURE_KIND},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@torch.no_grad()
def extract_features(model, dataset, batch_size: int = 32, device: torch.device | str = "cpu", num_workers: int = 0):
    """(features (N, D) float32, targets, sample_ids) of every item of ``dataset`` in order.

    The image encoder runs in eval mode (BatchNorm statistics fixed); its training flag is
    restored afterwards.
    """
    encoder = model.image_encoder
    was_training = encoder.training
    encoder.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    feats, targets, ids = [], [], []
    try:
        for batch in loader:
            out = encoder(batch["image"].to(device))
            feats.append(out.global_embedding.float().cpu())
            targets.append(batch["target"])
            ids.extend(batch["sample_id"])
    finally:
        encoder.train(was_training)
    return torch.cat(feats), torch.cat(targets), ids


def cached_features(
    model,
    dataset,
    subject_id: str,
    fingerprint: str,
    settings: Mapping[str, Any],
    cache_dir: str | Path | None,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
) -> CachedFeatures:
    """Features of ``dataset`` (one whole split) from the cache, extracting them on a miss.

    ``settings``: everything besides the checkpoint and manifest that changes the features or
    targets (transform, label selection, uncertainty policy); part of the key.
    ``cache_dir=None`` disables the cache (always extracts).
    """
    from safetensors.torch import save

    key = cache_key(subject_id, fingerprint, dataset.split, settings)
    path = Path(cache_dir) / f"{key}.safetensors" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:  # one read: tensors and metadata
                ids = json.loads((f.metadata() or {})["sample_ids"])
                features, targets = f.get_tensor("features"), f.get_tensor("targets")
            return CachedFeatures(features, targets, ids, hit=True)
        except Exception:  # a damaged entry is recomputed, never trusted
            path.unlink(missing_ok=True)
    features, targets, ids = extract_features(model, dataset, batch_size, device)
    if path is not None:
        blob = save({"features": features.contiguous(), "targets": targets.contiguous()},
                    metadata={"sample_ids": json.dumps(ids), "key": key})
        atomic_write_bytes(path, blob)
    return CachedFeatures(features, targets, ids, hit=False)
