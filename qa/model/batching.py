"""Conversations → one batch of tensors for ``RubricModel`` (messages deduplicated across the batch).

Rule and timing features come from ``qa.analysis.Analysis`` objects the caller computed (``analyse``): the
model package runs no rule engine of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
import torch

from qa.analysis import Analysis, timing_level
from qa.model.features import feature_vector
from qa.model.inputs import ROLE_TOKENS, Turn, flat_text, turns
from qa.model.modeling import ROLE_IDS, RubricConfig
from qa.rubric import Rubric
from qa.schema import Conversation


def encode(tokenizer, texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, longest] token ids and attention mask, truncated to ``max_tokens``: ``tokenizer(texts, truncation=True,
    padding=True)``, read straight from a fast tokenizer's Rust backend where there is one (the transformers call
    spends a third of its time turning lists into tensors)."""
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is None or tokenizer.padding_side != "right" or tokenizer.pad_token_id is None:
        enc = tokenizer(texts, truncation=True, max_length=max_tokens, padding=True, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]
    backend.enable_truncation(max_tokens)
    backend.enable_padding(pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token)
    encs = backend.encode_batch(texts)
    shape = (len(encs), len(encs[0].ids))
    ids = np.fromiter(chain.from_iterable(e.ids for e in encs), np.int64, count=shape[0] * shape[1])
    mask = np.fromiter(chain.from_iterable(e.attention_mask for e in encs), np.int64, count=shape[0] * shape[1])
    return torch.from_numpy(ids.reshape(shape)), torch.from_numpy(mask.reshape(shape))


class Batcher:
    """Builds model inputs. When the model reads rule/timing features, pass ``analyses`` (one per
    conversation); ``findings`` + ``timings`` are still taken, and turned into analyses here."""

    def __init__(self, config: RubricConfig, tokenizer=None, ngrams=None, rubric: Rubric | None = None):
        self.config, self.tokenizer, self.ngrams, self.rubric = config, tokenizer, ngrams, rubric
        self.analyser = None    # convs → analyses, for callers that pass none (set by the Classifier)

    def _from_parts(self, convs, findings, timings) -> list[Analysis]:
        if timings is None:
            if self.analyser is None:
                raise ValueError("the model reads rule and timing features: pass analyses (qa.analysis.analyse)")
            return self.analyser(convs)
        dims = {n: d for n, d in self.rubric.dimensions.items() if d.source == "timing"}
        return [Analysis(t, tuple(f or ()), {n: timing_level(self.rubric, d, t) for n, d in dims.items()})
                for f, t in zip(findings if findings is not None else [()] * len(timings), timings)]

    def __call__(self, convs: Sequence[Conversation], *, analyses: Sequence[Analysis] | None = None,
                 findings=None, timings=None,
                 targets: Sequence[dict[str, list[float]]] | None = None,
                 nuggets: Sequence[dict[int, list[float]]] | None = None) -> tuple[dict, list[list[Turn]]]:
        cfg = self.config
        batch: dict = {}
        all_turns = [turns(c, cfg.max_messages) for c in convs]
        if cfg.use_encoder:
            texts: dict[str, int] = {}
            width = max((len(t) for t in all_turns), default=1) or 1
            tmap = np.full((len(convs), width), -1, dtype=np.int64)
            roles = np.zeros((len(convs), width), dtype=np.int64)
            for b, ts in enumerate(all_turns):
                for j, t in enumerate(ts):
                    tmap[b, j] = texts.setdefault(ROLE_TOKENS[t.role] + t.text, len(texts))
                    roles[b, j] = ROLE_IDS[t.role]
            ids, mask = encode(self.tokenizer, list(texts) or ["[PAD]"], cfg.max_tokens)
            batch.update(input_ids=ids, attention_mask=mask,
                         turn_map=torch.from_numpy(tmap), turn_roles=torch.from_numpy(roles))
        if cfg.feature_names:
            if analyses is None:
                analyses = self._from_parts(convs, findings, timings)
            rows = [feature_vector(cfg.feature_names, self.rubric, a, c) for a, c in zip(analyses, convs)]
            batch["features"] = torch.tensor(rows, dtype=torch.float)
        if self.ngrams is not None:
            m = self.ngrams.transform([flat_text(c) for c in convs]).tocoo()
            idx = torch.from_numpy(np.vstack([m.row, m.col]).astype(np.int64))
            batch["ngrams"] = torch.sparse_coo_tensor(idx, torch.from_numpy(m.data), m.shape,
                                                      check_invariants=False).coalesce()
        if targets is not None:
            dims = list(cfg.dimensions)
            k = max(len(v) for v in cfg.dimensions.values())
            lab = torch.zeros(len(convs), len(dims), k)
            mask = torch.zeros(len(convs), len(dims), dtype=torch.bool)
            for b, t in enumerate(targets):
                for i, d in enumerate(dims):
                    if d in t:
                        lab[b, i, :len(t[d])] = torch.tensor(t[d])
                        mask[b, i] = True
            batch.update(labels=lab, label_mask=mask)
        if nuggets is not None and cfg.nuggets and cfg.use_encoder and any(nuggets):
            width = batch["turn_map"].shape[1]
            k = max(len(v) for v in cfg.nuggets.values())
            lab = torch.zeros(len(convs), width, k)
            mask = torch.zeros(len(convs), width, dtype=torch.bool)
            for b, (ts, nug) in enumerate(zip(all_turns, nuggets)):
                for j, t in enumerate(ts):
                    if t.index in nug:
                        lab[b, j, :len(nug[t.index])] = torch.tensor(nug[t.index])
                        mask[b, j] = True
            batch.update(nugget_labels=lab, nugget_mask=mask)
        return batch, all_turns
