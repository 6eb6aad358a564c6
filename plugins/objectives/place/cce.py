"""PLACE's CCE (cross-modal correlation exploration), as reconstructed in spec/place.md.

The paper (Wang et al., arXiv 2506.10573) describes CCE only as a proxy task that
"identifies correlations among image patches", predicting patch-level covariance
conditioned on the report. Formulas and hyperparameters are not public; every choice
below is a config key whose default is spec/place.md's reconstruction ("reconstruction").

Shapes: B images, N = gh * gw grid cells, D encoder width, W words, d = embed_dim.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from place_bench.hookspecs import hookimpl
from place_bench.plugins.objectives._common import at_least_float32

TEACHERS = ("stopgrad", "ema")
LOSSES = ("kl", "mse")
ROWS = ("all", "masked")


def patch_correlation(z: torch.Tensor) -> torch.Tensor:
    """Patch-patch correlation C = Ẑ Ẑᵀ of local embeddings.

    :param z: (B, N, d) local embeddings of B images.
    :returns: (B, N, N); Ẑ is z mean-centred over the N patches of each image, then
        L2-normalized along d (so C's diagonal is 1 unless a centred row is zero).
    """
    z = at_least_float32(z)
    z = z - z.mean(dim=1, keepdim=True)
    z = F.normalize(z, dim=-1)
    return z @ z.transpose(1, 2)


def cce_loss(
    target_local: torch.Tensor,
    predicted_local: torch.Tensor,
    loss: str = "kl",
    teacher_temperature: float = 0.04,
    student_temperature: float = 0.1,
    row_mask: torch.Tensor | None = None,
    include_diagonal: bool = True,
) -> torch.Tensor:
    """CCE loss between the correlations of two embedding sets of the same patches.

    C = :func:`patch_correlation` (target_local), Ĉ = :func:`patch_correlation` (predicted_local).

    * ``kl``: for row i of image b, KL(softmax(C_bi / τ_t) ‖ softmax(Ĉ_bi / τ_s)) over the
      columns j; the loss is the mean over the counted rows of all images.
    * ``mse``: mean of (C_bij − Ĉ_bij)² over the counted rows and all their columns.

    :param target_local: (B, N, d) target-side embeddings (callers detach them).
    :param predicted_local: (B, N, d) prediction-side embeddings.
    :param row_mask: (B, N) bool, rows that count; None = all rows (the default of
        spec/place.md's reconstruction, which does not restrict the rows).
    :param include_diagonal: keep column j = i in each row (always 1 in C); False
        leaves it out of both softmaxes (kl) or of the mean (mse).
    :returns: scalar loss.
    """
    if loss not in LOSSES:
        raise ValueError(f"place_cce.loss must be one of {LOSSES}, got {loss!r}")
    target = patch_correlation(target_local)
    predicted = patch_correlation(predicted_local)
    b, n, _ = target.shape
    columns = torch.ones(n, n, dtype=torch.bool, device=target.device)
    if not include_diagonal:
        columns = ~torch.eye(n, dtype=torch.bool, device=target.device)
    if loss == "kl":
        # Dropped columns get the most negative finite logit (probability 0 on both sides);
        # -inf would make 0 * (-inf - -inf) = NaN reach the backward pass.
        low = torch.finfo(target.dtype).min
        log_p = F.log_softmax((target / teacher_temperature).masked_fill(~columns, low), dim=-1)
        log_q = F.log_softmax((predicted / student_temperature).masked_fill(~columns, low), dim=-1)
        p = log_p.exp()
        per_row = torch.where(columns, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)  # (B, N)
    else:
        sq = (target - predicted).pow(2).masked_fill(~columns, 0.0)
        per_row = sq.sum(-1) / columns.sum(-1)  # (B, N)
    if row_mask is None:
        return per_row.mean()
    weights = row_mask.to(per_row.dtype)
    return (per_row * weights).sum() / weights.sum().clamp(min=1.0)


def random_patch_mask(batch: int, grid: tuple[int, int], ratio: float, device: torch.device | str) -> torch.Tensor:
    """(B, gh, gw) bool: round(ratio * N) cells hidden per image, drawn uniformly
    without replacement from the global torch RNG (independently per image)."""
    gh, gw = grid
    n = gh * gw
    hidden = int(round(ratio * n))
    order = torch.rand(batch, n, device=device).argsort(dim=1)
    mask = torch.zeros(batch, n, dtype=torch.bool, device=device)
    mask.scatter_(1, order[:, :hidden], True)
    return mask.view(batch, gh, gw)


def _copy_module(module: nn.Module) -> nn.Module:
    """Deep copy of ``module`` in which activations it keeps as attributes (non-leaf
    tensors, e.g. the encoder's captured CLS attention) become None: they cannot be
    deep-copied and the copy must not share them."""
    memo = {}
    for sub in module.modules():
        for value in vars(sub).values():
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter) and value.grad_fn is not None:
                memo[id(value)] = None
    return copy.deepcopy(module, memo)


class ReportCrossAttention(nn.Module):
    """One pre-norm cross-attention block: patch tokens (queries) attend to word tokens.

    x ← x + MHA(LN(x), LN(w), LN(w)) with padded words masked as keys;
    x ← x + MLP(LN(x)); MLP = Linear(d, r·d) → GELU → Linear(r·d, d).
    Images whose report has no word get no attention update (only the MLP).

    :param dim: token width d; :param num_heads: heads (d must divide); :param mlp_ratio: r.
    """

    def __init__(self, dim: int, num_heads: int = 4, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm_query = nn.LayerNorm(dim)
        self.norm_words = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """x: (B, N, d) patch tokens; words: (B, W, d); word_mask: (B, W) bool, True = real.
        Returns (B, N, d)."""
        has_words = word_mask.any(dim=1)  # (B,)
        # An all-padding key row would give NaN attention; such rows attend to everything and are zeroed below.
        padding = ~word_mask & has_words[:, None]
        kv = self.norm_words(words)
        attended, _ = self.attn(self.norm_query(x), kv, kv, key_padding_mask=padding, need_weights=False)
        x = x + attended * has_words[:, None, None].to(attended.dtype)
        return x + self.mlp(self.norm_mlp(x))


class PlaceCCE(nn.Module):
    """CCE: predict the unmasked image's patch correlations from a masked view and the report.

    Reconstruction of spec/place.md (section "CCE"); no official code exists.

    Target: C = Ẑ Ẑᵀ (:func:`patch_correlation`) of the local embeddings of the unmasked
    image: ``outputs.patch_local`` when the model has a patch projection head, else
    ``outputs.image.local_tokens`` through this objective's own Linear(image_local_dim, d);
    detached (``teacher='stopgrad'``), or computed by an EMA copy of the image encoder and
    that projection (``teacher='ema'``).

    Prediction: a random ``mask_ratio`` of the grid cells of each image is hidden;
    ``outputs.encode_image(images, patch_mask)`` → the same projection as the target's →
    :class:`ReportCrossAttention` over the report's word tokens (``outputs.word_local``,
    else ``word_features`` through an own Linear(text_dim, d)) → Linear(d, d) → Ĉ.

    Loss: :func:`cce_loss` (row-wise KL with τ_t, τ_s, or MSE), over all N rows of every
    image by default (``rows='all'``; ``'masked'`` counts only rows of hidden patches).
    Returns ``{"loss_<name>": weight * loss}``.

    The EMA teacher is created from the student at the first forward, updated
    θ_t ← m θ_t + (1 − m) θ_s (buffers copied) at every training-mode forward before the
    target is computed, and never trained. It is kept out of the state dict, so
    checkpoints hold the student only and a resumed run restarts the EMA from it.

    :param embed_dim: d (filled by the model).
    :param mask_ratio: fraction of grid cells hidden per image, in (0, 1).
    :param teacher: ``'stopgrad'`` or ``'ema'``; :param ema_momentum: m.
    :param loss: ``'kl'`` or ``'mse'``.
    :param teacher_temperature, student_temperature: τ_t, τ_s of ``kl``.
    :param rows: ``'all'`` or ``'masked'``; :param include_diagonal: see :func:`cce_loss`.
    :param num_heads, mlp_ratio: of the cross-attention block (suite choices; place.md is silent).
    :param image_local_dim: encoder local width D, needed only when the model has no
        ``image_local_projection`` (the objective then builds its own patch Linear).
    :param text_dim: text encoder width, needed only when the model has no
        ``text_local_projection``.
    :param weight: λ_CCE; :param name: the loss key is ``loss_<name>``.
    """

    def __init__(
        self,
        embed_dim: int = 128,
        mask_ratio: float = 0.5,
        teacher: str = "stopgrad",
        ema_momentum: float = 0.996,
        loss: str = "kl",
        teacher_temperature: float = 0.04,
        student_temperature: float = 0.1,
        rows: str = "all",
        include_diagonal: bool = True,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        image_local_dim: int | None = None,
        text_dim: int | None = None,
        weight: float = 1.0,
        name: str = "cce",
    ):
        super().__init__()
        if not 0 < mask_ratio < 1:
            raise ValueError(f"place_cce.mask_ratio must be in (0, 1), got {mask_ratio}")
        if teacher not in TEACHERS:
            raise ValueError(f"place_cce.teacher must be one of {TEACHERS}, got {teacher!r}")
        if loss not in LOSSES:
            raise ValueError(f"place_cce.loss must be one of {LOSSES}, got {loss!r}")
        if rows not in ROWS:
            raise ValueError(f"place_cce.rows must be one of {ROWS}, got {rows!r}")
        if not 0 <= ema_momentum <= 1:
            raise ValueError(f"place_cce.ema_momentum must be in [0, 1], got {ema_momentum}")
        if teacher_temperature <= 0 or student_temperature <= 0:
            raise ValueError("place_cce.teacher_temperature and student_temperature must be > 0")
        self.embed_dim = embed_dim
        self.mask_ratio = mask_ratio
        self.teacher = teacher
        self.ema_momentum = ema_momentum
        self.loss = loss
        self.teacher_temperature = teacher_temperature
        self.student_temperature = student_temperature
        self.rows = rows
        self.include_diagonal = include_diagonal
        self.weight = weight
        self.name = name
        self.patch_projection = nn.Linear(image_local_dim, embed_dim) if image_local_dim else None
        self.word_projection = nn.Linear(text_dim, embed_dim) if text_dim else None
        self.cross_attention = ReportCrossAttention(embed_dim, num_heads, mlp_ratio)
        self.output_projection = nn.Linear(embed_dim, embed_dim)
        # Held outside the module tree on purpose: the teacher exists only after the first
        # forward, and registering it then would change the state dict that strict loads check.
        self.__dict__["_ema"] = None

    # -- pieces ---------------------------------------------------------------------------
    def _projection(self, outputs) -> nn.Module:
        if outputs.patch_local is not None:
            if outputs.project_local is None:
                raise ValueError("place_cce: outputs.patch_local is set but outputs.project_local is None")
            return outputs.project_local
        if self.patch_projection is None:
            raise ValueError(
                "place_cce: the model has no image_local_projection; add one, or set "
                "place_cce.image_local_dim (the encoder's local width) so CCE projects the patches itself"
            )
        return self.patch_projection

    def _words(self, outputs) -> torch.Tensor:
        if outputs.word_local is not None:
            return outputs.word_local
        if self.word_projection is None:
            raise ValueError(
                "place_cce: the model has no text_local_projection; add one, or set "
                "place_cce.text_dim (the text encoder's width) so CCE projects the words itself"
            )
        return self.word_projection(outputs.text.word_features)

    def predict_local(self, outputs, patch_mask: torch.Tensor) -> torch.Tensor:
        """(B, N, d) predicted local embeddings of the view hidden by ``patch_mask`` (B, gh, gw)."""
        if outputs.encode_image is None or outputs.images is None:
            raise ValueError("place_cce: outputs.encode_image and outputs.images are needed to encode a masked view")
        masked = outputs.encode_image(outputs.images, patch_mask)
        x = self._projection(outputs)(masked.local_tokens)
        x = self.cross_attention(x, self._words(outputs), outputs.text.word_mask)
        return self.output_projection(x)

    @torch.no_grad()
    def target_local(self, outputs) -> torch.Tensor:
        """(B, N, d) target-side local embeddings of the unmasked images, without gradient."""
        if self.teacher == "stopgrad":
            if outputs.patch_local is not None:
                return outputs.patch_local.detach()
            return self._projection(outputs)(outputs.image.local_tokens.detach()).detach()
        encoder, projection = self._ema_teacher(outputs)
        return projection(encoder(outputs.images).local_tokens)

    def _ema_teacher(self, outputs) -> tuple[nn.Module, nn.Module]:
        student = (outputs.encode_image, self._projection(outputs))
        if not all(isinstance(m, nn.Module) for m in student):
            raise ValueError("place_cce.teacher='ema' needs the image encoder and the patch projection to be nn.Modules")
        if self._ema is None:
            teacher = nn.ModuleList(_copy_module(m) for m in student)
            for module in teacher.modules():
                # Hooks of the copy still point at the student (e.g. the CLS-attention capture).
                module._forward_hooks.clear()
                module._forward_pre_hooks.clear()
            teacher.requires_grad_(False)
            self.__dict__["_ema"] = teacher
        elif self.training:
            self.update_ema(student)
        teacher = self._ema
        teacher.train(self.training)
        return teacher[0], teacher[1]

    @torch.no_grad()
    def update_ema(self, student: tuple[nn.Module, nn.Module]) -> None:
        """θ_t ← m θ_t + (1 − m) θ_s for every parameter; buffers are copied."""
        m = self.ema_momentum
        for t_mod, s_mod in zip(self._ema, student):
            for t, s in zip(t_mod.parameters(), s_mod.parameters()):
                t.mul_(m).add_(s.detach().to(t.dtype), alpha=1 - m)
            for t, s in zip(t_mod.buffers(), s_mod.buffers()):
                t.copy_(s)

    def _apply(self, fn, *args, **kwargs):
        # .to(device) / .half() also reach the unregistered EMA teacher.
        if self._ema is not None:
            self._ema._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    # -- objective ------------------------------------------------------------------------
    def forward(self, outputs) -> dict[str, torch.Tensor]:
        grid = tuple(outputs.image.grid_size)
        batch = outputs.image.local_tokens.shape[0]
        patch_mask = random_patch_mask(batch, grid, self.mask_ratio, outputs.image.local_tokens.device)
        target = self.target_local(outputs)
        predicted = self.predict_local(outputs, patch_mask)
        if predicted.shape != target.shape:
            raise RuntimeError(f"place_cce: masked view gives {tuple(predicted.shape)}, target {tuple(target.shape)}")
        value = cce_loss(
            target,
            predicted,
            loss=self.loss,
            teacher_temperature=self.teacher_temperature,
            student_temperature=self.student_temperature,
            row_mask=patch_mask.flatten(1) if self.rows == "masked" else None,
            include_diagonal=self.include_diagonal,
        )
        return {f"loss_{self.name}": self.weight * value}


@hookimpl
def place_bench_register(registrar):
    registrar.add("objective", "place_cce", PlaceCCE)
