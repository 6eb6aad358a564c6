"""Joint-space embeddings of a whole split (images) or of a list of texts, in eval mode."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


@torch.no_grad()
def embed_images(model, dataset, batch_size: int = 32, device: torch.device | str = "cpu") -> tuple[np.ndarray, list]:
    """(unit-length embeddings float32 ``(N, embed_dim)``, sample ids) of every item of ``dataset``."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    out, ids = [], []
    for batch in loader:
        out.append(model.embed_image(batch["image"].to(device)).float().cpu())
        ids.extend(batch["sample_id"])
    return torch.cat(out).numpy(), ids


@torch.no_grad()
def embed_texts(model, texts: Sequence[str], batch_size: int = 64, device: torch.device | str = "cpu") -> np.ndarray:
    """Unit-length embeddings float32 ``(len(texts), embed_dim)`` of ``texts`` (report CLS features)."""
    out = []
    for start in range(0, len(texts), batch_size):
        batch = model.tokenize(list(texts[start:start + batch_size]))
        batch = batch.to(device) if hasattr(batch, "to") else batch
        out.append(model.embed_text(batch).float().cpu())
    return torch.cat(out).numpy()
