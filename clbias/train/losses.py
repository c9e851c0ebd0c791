"""The two training losses of method.md section 4 (torch is imported inside the functions)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

LN2 = math.log(2.0)


def sqrt_jsd(english: "torch.Tensor", target: "torch.Tensor", eps: float = 1e-8) -> "torch.Tensor":
    """Mean over the batch of sqrt(JSD(P || Q) + eps), P/Q = softmax over the dimensions of each row.

    JSD = (KL(P||M) + KL(Q||M)) / 2 with M = (P + Q) / 2, in nats, so 0 <= JSD <= ln 2 and the loss lies in
    [sqrt(eps), sqrt(ln 2 + eps)]. eps sits inside the root so the gradient is finite at P = Q.
    """
    import torch

    log_p = torch.log_softmax(english.float(), dim=-1)
    log_q = torch.log_softmax(target.float(), dim=-1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - LN2
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(-1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(-1)
    jsd = (0.5 * (kl_pm + kl_qm)).clamp_min(0.0)
    return torch.sqrt(jsd + eps).mean()


def info_nce(anchors: "torch.Tensor", candidates: "torch.Tensor", tau: float = 0.05,
             same: "torch.Tensor | None" = None) -> "torch.Tensor":
    """InfoNCE: row i of `anchors` should pick row i of `candidates` over every other row.

    Cosine similarity / tau, cross-entropy over the batch. `same[i, j]` (bool, [B, B]) marks candidates j != i
    that are copies of i's positive (the same query text twice in a batch): they are dropped from i's
    negatives rather than pushed away.
    """
    import torch
    import torch.nn.functional as F

    a = F.normalize(anchors.float(), dim=-1)
    c = F.normalize(candidates.float(), dim=-1)
    logits = a @ c.T / tau
    if same is not None:
        eye = torch.eye(len(a), dtype=torch.bool, device=a.device)
        logits = logits.masked_fill(same & ~eye, float("-inf"))
    labels = torch.arange(len(a), device=a.device)
    return F.cross_entropy(logits, labels)
