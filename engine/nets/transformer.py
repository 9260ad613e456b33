"""`EventTransformer`: the decoder (with an optional token encoder) all three stages share.

    memory   = encoder(source tokens)           melody, accompaniment (bar-masked)
             | video_proj(video features)       chord: learned video features, zeros
                                                when none are given (the null condition)
    cross K/V = per decoder layer, from the memory, computed once
    decoder  = causal self-attention + cross-attention + MLP, pre-norm
    heads    = type, then the fields of that type (`CompoundHeads`)

`step` is one decoder step with a self-attention KV cache: what the exporter
turns into the ONNX decoder graph. The cache starts with one masked slot so
its length is never 0 (exporters specialise 0-sized dimensions).
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import (CompoundHeads, DecoderBlock, EncoderBlock, NetConfig, TokenEmbedding, bar_mask,
                     compound_nll)


class EventTransformer(nn.Module):
    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.embed = TokenEmbedding(config)
        if config.has_token_encoder:
            self.source_embed = TokenEmbedding(config)
            self.encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.n_encoder_layers))
        else:
            self.video_proj = nn.Linear(config.d_video, config.d_model)
        self.memory_ln = nn.LayerNorm(config.d_model)
        self.decoder = nn.ModuleList(DecoderBlock(config) for _ in range(config.n_layers))
        self.final_ln = nn.LayerNorm(config.d_model)
        self.heads = CompoundHeads(config)
        self.apply(_init_weights)
        nn.init.zeros_(self.embed.context[0].weight)  # bars beyond the training crops add nothing

    # -- memory -------------------------------------------------------------------
    def encode(self, source: torch.Tensor, source_context: torch.Tensor, source_bar: torch.Tensor) -> torch.Tensor:
        """Token encoder over the source (B,S,F); source_bar < 0 marks padding."""
        positions = torch.arange(source.shape[1], device=source.device).unsqueeze(0)
        x = self.source_embed(source, source_context, positions)
        allowed = (source_bar >= 0).unsqueeze(1).unsqueeze(1)
        for block in self.encoder:
            x = block(x, allowed)
        return self.memory_ln(x)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B,S,d_video) video features -> memory; all zeros is the 'no video' condition."""
        return self.memory_ln(self.video_proj(video))

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of every decoder layer, (L,B,H,S,Dh) each."""
        pairs = [block.cross.memory_kv(memory) for block in self.decoder]
        return torch.stack([k for k, _ in pairs]), torch.stack([v for _, v in pairs])

    # -- teacher-forced decoder (training, scoring) -------------------------------------
    def hidden(self, tokens, context, cross_k, cross_v, memory_bar) -> torch.Tensor:
        t = tokens.shape[1]
        positions = torch.arange(t, device=tokens.device).unsqueeze(0)
        x = self.embed(tokens, context, positions)
        causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).tril()
        cross_allowed = bar_mask(context[..., 0], memory_bar, self.config.bar_window)
        for i, block in enumerate(self.decoder):
            x = block(x, causal, cross_k[i], cross_v[i], cross_allowed)[0]
        return self.final_ln(x)

    def memory_for(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.has_token_encoder:
            return self.encode(batch["source"], batch["source_context"], batch["source_bar"]), batch["source_bar"]
        video = batch["video"]
        bars = torch.zeros(video.shape[:2], dtype=torch.long, device=video.device)
        return self.encode_video(video), bars

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed NLL of batch["tokens"][:, 1:] given the tokens before, and the token count."""
        memory, memory_bar = self.memory_for(batch)
        cross_k, cross_v = self.memory_kv(memory)
        tokens, context = batch["tokens"], batch["context"]
        h = self.hidden(tokens[:, :-1], context[:, :-1], cross_k, cross_v, memory_bar)
        targets = tokens[:, 1:]
        type_logits, field_logits = self.heads(h, targets[..., 0])
        return compound_nll(type_logits, field_logits, targets, self.config.field_sizes)

    # -- one decoder step with a KV cache (exported) ----------------------------------
    def step(self, token, context, past_k, past_v, cross_k, cross_v, memory_bar):
        """token (B,1,F), context (B,1,C), past_k/v (L,B,H,P,Dh) with slot 0 a masked dummy.

        Returns type logits (B,T), field logits (B,T,sum sizes), present_k/v (L,B,H,P+1,Dh).
        past_k/v and cross_k/v may also be sequences of L per-layer (B,H,.,Dh) tensors (what the
        exported graph takes): present_k/v are then lists too, nothing is stacked or split.
        """
        past = past_k[0].shape[2]
        positions = torch.full_like(token[:, :, 0], past - 1)
        slots = torch.arange(past + 1, device=token.device)
        self_allowed = (slots > 0).view(1, 1, 1, past + 1)
        type_logits, field_logits, keys, values = self._step(token, context, positions, self_allowed, past_k, past_v,
                                                             cross_k, cross_v, memory_bar)
        if torch.is_tensor(past_k):
            return type_logits, field_logits, torch.stack(keys), torch.stack(values)
        return type_logits, field_logits, keys, values

    def step_in_place(self, token, context, caches_k, caches_v, seqlens_k, total_length, cross_k, cross_v,
                      memory_bar):
        """`step` over L per-layer preallocated caches (B,H,capacity,Dh) holding seqlens_k (B,) int32 tokens
        each, no dummy slot; total_length = seqlens_k + 1 (one int32, ONNX Runtime's GroupQueryAttention
        wants it). The token's K/V go in at slot seqlens_k (`AppendAttention`); returns the logits and the
        caches (lists). What the exporter turns into the in-place decoder graph."""
        positions = seqlens_k.long().unsqueeze(1)
        return self._step(token, context, positions, None, caches_k, caches_v, cross_k, cross_v, memory_bar,
                          (seqlens_k, total_length))

    def _step(self, token, context, positions, self_allowed, past_k, past_v, cross_k, cross_v, memory_bar,
              append=None):
        x = self.embed(token, context, positions)
        cross_allowed = bar_mask(context[..., 0], memory_bar, self.config.bar_window)
        keys, values = [], []
        for i, block in enumerate(self.decoder):
            x, k, v = block(x, self_allowed, cross_k[i], cross_v[i], cross_allowed, past_k[i], past_v[i], append)
            keys.append(k)
            values.append(v)
        type_logits, field_logits = self.heads.all_types(self.final_ln(x)[:, 0])
        return type_logits, field_logits, keys, values

    def empty_cache(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        shape = (c.n_layers, batch, c.n_heads, 1, c.head_dim)
        return torch.zeros(shape), torch.zeros(shape)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
