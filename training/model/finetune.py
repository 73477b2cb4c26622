"""Fine-tune the pretrained encoder on behaviour: a two-tower contrastive model.

Item tower: the encoder on the item's text. User tower: a recency-weighted mean of the item
tower's vectors of the user's recent items (the newest counts most), plus query text when given.
Loss: InfoNCE over in-batch negatives (every other item in the batch), temperature ``tau``.

Why only the top layers train: on a 2-core CPU a full backward pass through MiniLM costs
seconds per batch. The bottom layers stay frozen, so their outputs for the whole catalogue are
computed once and cached; each step then runs (and back-propagates through) only the top
``layers_trained`` transformer layers. The result is still one ordinary Hugging Face model
(bottom weights unchanged, top weights tuned), saved in sentence-transformers format.
On a GPU the same code runs there (device picked automatically).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from coldrec.core import progress as progress_bars
from coldrec.core.params import FinetuneParams
from coldrec.runtime.blend import recency_weights


def with_head(st_model):
    """The same model plus a residual Dense layer before normalisation: outputs are unchanged until
    it is trained, and it saves/loads as a standard sentence-transformers module."""
    import torch.nn as nn
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense

    modules = list(st_model)
    if any(isinstance(m, Dense) for m in modules):
        return st_model
    dim = (getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension)()
    head = Dense(dim, dim, bias=False, activation_function=nn.Identity(), use_residual=True, init_weight=torch.zeros(dim, dim))
    at = next((i for i, m in enumerate(modules) if type(m).__name__ == "Normalize"), len(modules))
    return SentenceTransformer(modules=modules[:at] + [head] + modules[at:], device=str(st_model.device))


class PartialEncoder:
    """A sentence-transformers model split into a frozen, cached bottom and a trainable top."""

    def __init__(self, st_model, layers_trained: int, max_len: int, device: str):
        from sentence_transformers.sentence_transformer.modules import Dense

        self.st = st_model.to(device)
        self.bert = st_model[0].auto_model
        self.head = next((m for m in st_model if isinstance(m, Dense)), None)
        self.tok = st_model.tokenizer
        n = len(self.bert.encoder.layer)
        self.split = max(0, n - int(layers_trained))
        self.max_len = max_len
        self.device = device
        for p in self.bert.parameters():
            p.requires_grad_(False)
        for layer in self.bert.encoder.layer[self.split:]:
            for p in layer.parameters():
                p.requires_grad_(True)

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.bert.parameters() if p.requires_grad] + self.head_params()

    def head_params(self) -> list[torch.nn.Parameter]:
        return list(self.head.parameters()) if self.head is not None else []

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.tok(texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt")
        return b["input_ids"], b["attention_mask"]

    def _mask(self, hidden: torch.Tensor, am: torch.Tensor):
        """The mask the encoder's attention kernel expects, through the public masking API: a private
        ``BertModel`` helper used before changed its signature between transformers 5.17 and 5.24."""
        try:
            from transformers.masking_utils import create_bidirectional_mask
        except ImportError:  # pragma: no cover - transformers < 4.56: the classic additive mask
            return self.bert.get_extended_attention_mask(am, am.shape, dtype=hidden.dtype)
        return create_bidirectional_mask(config=self.bert.config, inputs_embeds=hidden, attention_mask=am)

    @torch.no_grad()
    def bottom(self, input_ids: torch.Tensor, am: torch.Tensor, batch: int = 256, progress: bool = True) -> torch.Tensor:
        """Hidden states after the frozen layers, for every text (kept on the CPU, float16)."""
        self.bert.eval()
        out = []
        starts = range(0, len(input_ids), batch)
        for s in progress_bars.bar(starts, desc="cache frozen layers", disable=not progress, leave=False):
            ids, m = input_ids[s:s + batch].to(self.device), am[s:s + batch].to(self.device)
            h = self.bert.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
            mask = self._mask(h, m)
            for layer in self.bert.encoder.layer[:self.split]:
                h = layer(h, mask)
            out.append(h.to("cpu", torch.float16))
        return torch.cat(out)

    def top(self, hidden: torch.Tensor, am: torch.Tensor) -> torch.Tensor:
        """Trainable layers + mean pooling + L2 norm: the same vectors the full model gives."""
        width = int(am.sum(1).max())  # right-padded: drop columns that are padding for every row
        h = hidden[:, :width].to(self.device, torch.float32)
        m = am[:, :width].to(self.device)
        mask = self._mask(h, m)
        for layer in self.bert.encoder.layer[self.split:]:
            h = layer(h, mask)
        mf = m.unsqueeze(-1).to(h.dtype)
        pooled = (h * mf).sum(1) / mf.sum(1).clamp(min=1e-9)
        if self.head is not None:
            pooled = self.head({"sentence_embedding": pooled})["sentence_embedding"]
        return F.normalize(pooled, dim=-1)

    @torch.no_grad()
    def all_vectors(self, cache: torch.Tensor, am: torch.Tensor, batch: int = 512) -> np.ndarray:
        self.bert.eval()
        return np.concatenate([self.top(cache[s:s + batch], am[s:s + batch]).cpu().numpy()
                               for s in range(0, len(cache), batch)]).astype(np.float32)


@dataclass
class FinetuneResult:
    steps: int
    seconds: float
    best_step: int
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str = ""


def sample_batch(seqs: list[np.ndarray], rng: np.random.Generator, cfg: FinetuneParams):
    """B examples: (history item indices oldest-first, one later target item index)."""
    hist: list[np.ndarray] = []
    targets: list[int] = []
    while len(targets) < cfg.batch_size:
        s = seqs[int(rng.integers(len(seqs)))]
        k = int(rng.integers(1, min(cfg.history, len(s) - 1) + 1))
        start = int(rng.integers(0, len(s) - k))
        h = s[start:start + k]
        later = s[start + k:start + k + cfg.target_window]
        hist.append(h)
        targets.append(int(later[int(rng.integers(len(later)))]))
    return hist, np.array(targets)


def finetune(st_model, texts: list[str], seqs: list[np.ndarray], cfg: FinetuneParams, seed: int,
             validate: Callable[[np.ndarray], float] | None = None, device: str | None = None,
             progress: bool = True):
    """Train the top layers (and head) of ``st_model``; returns (model, catalogue vectors, result)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    seqs = [s for s in seqs if len(s) >= 2]
    if cfg.head:
        st_model = with_head(st_model)
    enc = PartialEncoder(st_model, cfg.layers_trained, cfg.max_len, device)
    ids, am = enc.tokenize(texts)
    cache = enc.bottom(ids, am, progress=progress)
    params = enc.trainable()
    head_ids = {id(p) for p in enc.head_params()}
    groups = [{"params": [p for p in params if id(p) not in head_ids], "lr": cfg.lr},
              {"params": enc.head_params(), "lr": cfg.head_lr, "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=cfg.weight_decay)
    warmup = max(1, cfg.max_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.max_steps) / cfg.max_steps)))
    t0 = time.perf_counter()
    result = FinetuneResult(0, 0.0, 0, -1.0)
    best_state = None
    if validate is not None:
        result.best_score = validate(enc.all_vectors(cache, am))
        result.history.append({"step": 0, "val": result.best_score})
        best_state = [p.detach().clone() for p in params]
    bad = 0
    bar = progress_bars.bar(total=cfg.max_steps, desc="fine-tune encoder", disable=not progress or not seqs)
    step = 0
    for step in range(1, cfg.max_steps + 1 if seqs else 1):
        for layer in enc.bert.encoder.layer[enc.split:]:
            layer.train()
        if enc.head is not None:
            enc.head.train()
        hist, targets = sample_batch(seqs, rng, cfg)
        uniq, inv = np.unique(np.concatenate([np.concatenate(hist), targets]), return_inverse=True)
        vecs = enc.top(cache[uniq], am[uniq])
        # user tower: recency-weighted mean of the history's item vectors
        pos, users = 0, []
        for h in hist:
            w = torch.from_numpy(recency_weights(len(h), cfg.recency_decay)).to(vecs.device)
            users.append((vecs[inv[pos:pos + len(h)]] * w[:, None]).sum(0))
            pos += len(h)
        u = F.normalize(torch.stack(users), dim=-1)
        logits = u @ vecs.T / cfg.tau
        target_col = torch.from_numpy(inv[pos:]).to(vecs.device)
        own = torch.zeros_like(logits, dtype=torch.bool)  # a user's own history is not a negative
        pos = 0
        for r, h in enumerate(hist):
            own[r, torch.from_numpy(inv[pos:pos + len(h)]).to(vecs.device)] = True
            pos += len(h)
        own[torch.arange(len(hist)), target_col] = False
        loss = F.cross_entropy(logits.masked_fill(own, -1e4), target_col)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        elapsed = (time.perf_counter() - t0) / 60
        last = step == cfg.max_steps or elapsed >= cfg.max_minutes
        if validate is not None and (step % cfg.eval_every == 0 or last):
            score = validate(enc.all_vectors(cache, am))
            result.history.append({"step": step, "val": score, "loss": float(loss.item())})
            if score > result.best_score:
                result.best_score, result.best_step, bad = score, step, 0
                best_state = [p.detach().clone() for p in params]
            else:
                bad += 1
                if bad >= cfg.patience:
                    result.stopped = f"early stop: no gain in {cfg.patience} checks"
                    break
        if elapsed >= cfg.max_minutes:
            result.stopped = f"time budget {cfg.max_minutes} min"
            break
    bar.close()
    if best_state is not None:
        with torch.no_grad():
            for p, b in zip(params, best_state):
                p.copy_(b)
    for p in enc.trainable():
        p.requires_grad_(False)
    enc.st.eval()
    result.steps, result.seconds = step, time.perf_counter() - t0
    if not result.stopped:
        result.stopped = "max steps"
    return enc.st, enc.all_vectors(cache, am), result
