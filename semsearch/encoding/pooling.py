"""Pooling token vectors into one sentence vector, exactly as sentence-transformers does."""

from __future__ import annotations

import torch


def pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor, modes: tuple[str, ...],
         prompt_length: int = 0) -> torch.Tensor:
    """Concatenate the pooled vectors of ``modes`` (right-padded batches).

    ``prompt_length`` > 0 excludes that many leading tokens (a prompt) from pooling, as a
    Pooling module with ``include_prompt: false`` does.
    """
    mask = attention_mask
    if prompt_length:
        mask = mask.clone()
        mask[:, :prompt_length] = 0
    # Half-precision sums lose digits over long inputs; accumulate in float32.
    acc_dtype = torch.float32 if token_embeddings.dtype in (torch.float16, torch.bfloat16) else token_embeddings.dtype
    outputs: list[torch.Tensor] = []
    for mode in modes:
        if mode == "cls":
            first = mask.to(torch.int).argmax(dim=1)
            outputs.append(token_embeddings[torch.arange(token_embeddings.size(0)), first])
        elif mode == "max":
            filled = token_embeddings.masked_fill(mask.unsqueeze(-1) == 0, float("-inf"))
            outputs.append(filled.max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            m = mask.unsqueeze(-1).to(token_embeddings.dtype)
            total = (token_embeddings * m).sum(dim=1, dtype=acc_dtype)
            count = torch.clamp(m.sum(dim=1, dtype=acc_dtype), min=1e-9)
            denominator = count if mode == "mean" else torch.sqrt(count)
            outputs.append((total / denominator).to(token_embeddings.dtype))
        elif mode == "weightedmean":
            m = mask.unsqueeze(-1).to(acc_dtype)
            weights = torch.arange(1, token_embeddings.size(1) + 1, device=token_embeddings.device,
                                   dtype=acc_dtype).view(1, -1, 1)
            weighted = m * weights
            total = (token_embeddings * weighted).sum(dim=1)
            outputs.append((total / torch.clamp(weighted.sum(dim=1), min=1e-9)).to(token_embeddings.dtype))
        elif mode == "lasttoken":
            # Right padding: the last real token sits at (number of real tokens - 1).
            last = attention_mask.sum(dim=1).clamp(min=1) - 1
            outputs.append(token_embeddings[torch.arange(token_embeddings.size(0)), last])
        else:
            raise ValueError(f"unknown pooling mode {mode!r}")
    return torch.cat(outputs, dim=-1)
