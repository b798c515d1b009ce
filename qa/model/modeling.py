"""The network: encoder over messages → message-level context layer → per-dimension attention over agent
turns → one head per rubric dimension, plus an optional char n-gram channel and non-text features.

Saved and loaded the Hugging Face way (``save_pretrained`` / ``from_pretrained``, safetensors); the encoder is
any ``AutoModel`` (the project's own char BERT, or a hub/local model such as ``hfl/rbt3``).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

ROLE_IDS = {"customer": 0, "agent": 1, "bot": 2}


class RubricConfig(PretrainedConfig):
    """What the model grades (``dimensions``: name → levels, best first) and how it is built."""

    model_type = "qa_rubric"

    def __init__(self, encoder: dict | None = None, dimensions: dict[str, list] | None = None,
                 dimension_list: list | None = None,
                 feature_names: list[str] | None = None, n_ngrams: int = 0, use_encoder: bool = True,
                 context_layers: int = 1, head_hidden: int = 64, dropout: float = 0.1, max_messages: int = 40,
                 max_tokens: int = 64, temperatures: dict[str, float] | None = None,
                 decision: str = "argmax", rubric: str | None = None,
                 nuggets: dict[str, list[str]] | None = None, flags: list[str] | None = None,
                 flag_thresholds: dict[str, float] | None = None, flag_turns: dict[str, str | None] | None = None,
                 turn_labels: dict[str, list[str]] | None = None, cutpoints: dict[str, list[float]] | None = None,
                 nugget_temperatures: dict[str, float] | None = None,
                 cutpoints_ungated: dict[str, list[float]] | None = None,
                 flag_vetoes: dict[str, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder or {}
        pairs = dimension_list if dimension_list is not None else list((dimensions or {}).items())
        self.dimension_list = [[k, list(v)] for k, v in pairs]   # a list: JSON key sorting must not reorder
        self.feature_names = list(feature_names or [])
        self.n_ngrams, self.use_encoder = n_ngrams, use_encoder
        self.context_layers, self.head_hidden, self.dropout = context_layers, head_hidden, dropout
        self.max_messages, self.max_tokens = max_messages, max_tokens
        self.temperatures = dict(temperatures or {})
        self.decision, self.rubric = decision, rubric
        self.nuggets = dict(nuggets or {})     # role (customer | agent) → per-turn labels; needs the encoder
        self.nugget_temperatures = dict(nugget_temperatures or {})   # role → softmax temperature (dev split)
        self.flags = list(flags or [])         # rule flags predicted per conversation (binary)
        self.flag_thresholds = dict(flag_thresholds or {})   # flag → probability at which it is raised
        self.flag_vetoes = dict(flag_vetoes or {})   # flag → probability below which a rule finding the model did
                                                     # not raise is dropped (``qa.rules.combine``; not red lines)
        self.flag_turns = dict(flag_turns or {})             # flag → "role.label" giving its evidence turn
        self.turn_labels = dict(turn_labels or {})           # role → binary per-turn labels; needs the encoder
        self.cutpoints = dict(cutpoints or {})   # dimension → thresholds on the expected level index (decision
                                                 # "cutpoints": level = how many thresholds it passes)
        self.cutpoints_ungated = dict(cutpoints_ungated or {})   # dimension → thresholds for the chats the ridge
                                                                 # gate does not claim (``qa.model.decision``)


    @property
    def dimensions(self) -> dict[str, list]:
        return {k: v for k, v in self.dimension_list}


def encoder_config(cfg: RubricConfig):
    d = dict(cfg.encoder)
    return AutoConfig.for_model(d.pop("model_type"), **d)


def auto_encoder(config=None, path: str | None = None):
    """``AutoModel`` without the pooling layer where the architecture has one (we pool messages ourselves)."""
    make = (lambda **kw: AutoModel.from_pretrained(path, **kw)) if path else \
        (lambda **kw: AutoModel.from_config(config, **kw))
    try:
        return make(add_pooling_layer=False)
    except TypeError:
        return make()


class RubricModel(PreTrainedModel):
    config_class = RubricConfig
    base_model_prefix = "encoder"
    _no_split_modules: list[str] = []

    def __init__(self, config: RubricConfig, encoder: nn.Module | None = None):
        super().__init__(config)
        dims = config.dimensions
        n_feat = len(config.feature_names)
        h = 0
        if config.use_encoder:
            self.encoder = encoder if encoder is not None else auto_encoder(encoder_config(config))
            h = self.encoder.config.hidden_size
            self.role = nn.Embedding(len(ROLE_IDS), h)
            self.position = nn.Embedding(config.max_messages, h)
            layer = nn.TransformerEncoderLayer(h, nhead=4 if h % 4 == 0 else 1, dim_feedforward=2 * h,
                                               dropout=config.dropout, batch_first=True)
            self.context = nn.TransformerEncoder(layer, config.context_layers, enable_nested_tensor=False)
            self.queries = nn.Parameter(torch.randn(len(dims), h) * 0.02)
        self.drop = nn.Dropout(config.dropout)
        width = 2 * h + n_feat
        self.heads = nn.ModuleDict({
            d: nn.Sequential(nn.Linear(width, config.head_hidden), nn.GELU(), nn.Dropout(config.dropout),
                             nn.Linear(config.head_hidden, len(levels)))
            for d, levels in dims.items()} if width else {})
        n_flags = len(config.flags)
        if n_flags:
            if config.use_encoder:
                self.flag_queries = nn.Parameter(torch.randn(n_flags, h) * 0.02)
            self.flag_heads = nn.ModuleDict({
                f: nn.Sequential(nn.Linear(width, config.head_hidden), nn.GELU(), nn.Dropout(config.dropout),
                                 nn.Linear(config.head_hidden, 1)) for f in config.flags} if width else {})
        if config.turn_labels and config.use_encoder:
            self.turn_heads = nn.ModuleDict({
                role: nn.Sequential(nn.Linear(h, config.head_hidden), nn.GELU(), nn.Dropout(config.dropout),
                                    nn.Linear(config.head_hidden, len(labels)))
                for role, labels in config.turn_labels.items()})
        self.ngram = (nn.Linear(config.n_ngrams, sum(len(v) for v in dims.values()) + n_flags)
                      if config.n_ngrams else None)
        if config.nuggets and config.use_encoder:
            self.nugget_heads = nn.ModuleDict({
                role: nn.Sequential(nn.Linear(h, config.head_hidden), nn.GELU(), nn.Dropout(config.dropout),
                                    nn.Linear(config.head_hidden, len(types)))
                for role, types in config.nuggets.items()})
        self.post_init()

    def _init_weights(self, module):  # the encoder brings its own initialisation
        if module is self or isinstance(module, PreTrainedModel):
            return
        if isinstance(module, nn.Linear) and module is not getattr(self, "ngram", None):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def encode_messages(self, input_ids, attention_mask, chunk: int = 256):
        """Mean-pooled vectors of many messages, encoded in length-sorted chunks to spare padding."""
        lengths = attention_mask.sum(1)
        order = torch.argsort(lengths, descending=True)
        out = input_ids.new_zeros((input_ids.shape[0], self.encoder.config.hidden_size), dtype=torch.float)
        for s in range(0, len(order), chunk):
            idx = order[s:s + chunk]
            t = int(lengths[idx].max())
            ids, mask = input_ids[idx, :t], attention_mask[idx, :t]
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            out[idx] = ((hidden * m).sum(1) / m.sum(1).clamp(min=1)).to(out.dtype)
        return out

    def forward(self, input_ids=None, attention_mask=None, turn_map=None, turn_roles=None, features=None,
                ngrams=None, ngram_logits=None, labels=None, label_mask=None, nugget_labels=None,
                nugget_mask=None, sample_weight=None, flag_labels=None, flag_mask=None, turn_targets=None,
                turn_mask=None, **_):
        """Logits per dimension (a dict), attention over turns [B, dims, M] and, given labels, the loss.

        ``turn_map`` [B, M]: index of each turn's message vector (−1 = padding); ``turn_roles`` [B, M].
        ``labels`` [B, dims, max_levels]: target distributions; ``label_mask`` [B, dims]: graded or not.
        ``nugget_labels`` [B, M, max_types] / ``nugget_mask`` [B, M]: per-turn nugget targets, when the rubric
        has nuggets; the result then also has ``nuggets``: role → logits [B, M, types].
        ``ngram_logits`` [B, Σ levels + flags] replaces the n-gram channel's output (out-of-fold logits in
        training). With ``flags`` in the config the result has ``flags`` [B, F] logits and ``flag_attention``
        [B, F, M]; with ``turn_labels``, ``turns``: role → logits [B, M, labels]. Their targets:
        ``flag_labels``/``flag_mask`` [B, F] and ``turn_targets``/``turn_mask`` [B, M, K].
        """
        parts, attn, nug, fparts, fattn, turn_logits = [], None, None, [], None, None
        b = next(t for t in (turn_map, features, ngrams, ngram_logits) if t is not None).shape[0]
        if self.config.use_encoder:
            vecs = self.encode_messages(input_ids, attention_mask)
            pad = turn_map < 0
            x = vecs[turn_map.clamp(min=0)]
            pos = torch.arange(turn_map.shape[1], device=x.device).clamp(max=self.config.max_messages - 1)
            x = x + self.role(turn_roles) + self.position(pos)[None]
            x = self.context(x, src_key_padding_mask=pad)
            agent = (turn_roles != ROLE_IDS["customer"]) & ~pad
            agent = torch.where(agent.any(1, keepdim=True), agent, ~pad)
            scores = torch.einsum("bmh,dh->bdm", x, self.queries) / x.shape[-1] ** 0.5
            scores = scores.masked_fill(~agent[:, None, :], float("-inf"))
            attn = scores.softmax(-1)
            pooled = torch.einsum("bdm,bmh->bdh", attn, x)
            mean = (x * (~pad)[..., None]).sum(1) / (~pad).sum(1, keepdim=True).clamp(min=1)
            parts = [pooled, mean[:, None, :].expand(-1, pooled.shape[1], -1)]
            if hasattr(self, "nugget_heads"):
                nug = {role: head(x) for role, head in self.nugget_heads.items()}
            if hasattr(self, "turn_heads"):
                turn_logits = {role: head(x) for role, head in self.turn_heads.items()}
            if hasattr(self, "flag_queries"):
                fs = torch.einsum("bmh,fh->bfm", x, self.flag_queries) / x.shape[-1] ** 0.5
                fattn = fs.masked_fill(pad[:, None, :], float("-inf")).softmax(-1)
                fparts = [torch.einsum("bfm,bmh->bfh", fattn, x), mean[:, None, :].expand(-1, fattn.shape[1], -1)]
        if features is not None and self.config.feature_names:
            parts.append(features[:, None, :].expand(-1, len(self.config.dimensions), -1))
            if fparts or (self.config.flags and not self.config.use_encoder):
                fparts.append(features[:, None, :].expand(-1, len(self.config.flags), -1))
        logits = {}
        z = self.drop(torch.cat(parts, -1)) if parts else None
        extra = ngram_logits
        if extra is None and self.ngram is not None:
            extra = (torch.sparse.mm(ngrams, self.ngram.weight.t()) + self.ngram.bias if ngrams.is_sparse
                     else self.ngram(ngrams))
        start = 0
        for i, (d, levels) in enumerate(self.config.dimensions.items()):
            out = self.heads[d](z[:, i]) if z is not None else torch.zeros(b, len(levels), device=extra.device)
            if extra is not None:
                out = out + extra[:, start:start + len(levels)]
            start += len(levels)
            logits[d] = out
        result = {"logits": logits, "attention": attn}
        if self.config.flags:
            zf = self.drop(torch.cat(fparts, -1)) if fparts else None
            cols = []
            for j, f in enumerate(self.config.flags):
                col = self.flag_heads[f](zf[:, j])[:, 0] if zf is not None else torch.zeros(b, device=extra.device)
                if extra is not None:
                    col = col + extra[:, start + j]
                cols.append(col)
            result["flags"], result["flag_attention"] = torch.stack(cols, 1), fattn
        if nug is not None:
            result["nuggets"] = nug
        if turn_logits is not None:
            result["turns"] = turn_logits
        if labels is not None:
            result["loss"] = self.loss(logits, labels, label_mask, sample_weight)
            if nug is not None and nugget_labels is not None:
                result["loss"] = result["loss"] + self.nugget_loss(nug, turn_roles, nugget_labels, nugget_mask)
            if flag_labels is not None and "flags" in result:
                result["loss"] = result["loss"] + self.flag_loss(result["flags"], flag_labels, flag_mask, sample_weight)
            if turn_logits is not None and turn_targets is not None:
                result["loss"] = result["loss"] + self.turn_loss(turn_logits, turn_roles, turn_targets, turn_mask)
        return result

    @staticmethod
    def flag_loss(logits, targets, mask, sample_weight=None):
        """Binary cross-entropy on the reviewers' share per flag, over the flags that were reviewed."""
        if not mask.any():
            return logits.sum() * 0
        w = mask.float() * (sample_weight[:, None] if sample_weight is not None else 1.0)
        bce = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        return (bce * w).sum() / w.sum().clamp(min=1e-6)

    def turn_loss(self, turn_logits, turn_roles, targets, mask):
        """Binary cross-entropy per labelled turn and label, each role's turns scored by that role's head."""
        total, n = 0.0, 0
        for role, logits in turn_logits.items():
            k = logits.shape[-1]
            sel = ((turn_roles == ROLE_IDS["customer"]) == (role == "customer"))[..., None] & mask[..., :k]
            if sel.any():
                bce = nn.functional.binary_cross_entropy_with_logits(logits, targets[..., :k], reduction="none")
                total = total + bce[sel].sum()
                n += int(sel.sum())
        return total / max(n, 1)

    @staticmethod
    def nugget_loss(nug, turn_roles, labels, mask):
        """Soft-label cross-entropy per labelled turn, each role's turns scored by that role's head."""
        total, n = 0.0, 0
        for role, logits in nug.items():
            sel = mask & ((turn_roles == ROLE_IDS["customer"]) == (role == "customer"))
            if sel.any():
                k = logits.shape[-1]
                total = total - (labels[sel][:, :k] * logits[sel].log_softmax(-1)).sum(-1).sum()
                n += int(sel.sum())
        return total / max(n, 1)

    def loss(self, logits, labels, label_mask, sample_weight=None, ordinal: float = 0.5):
        """Soft-label cross-entropy plus a squared error on the expected level (grades are ordinal), averaged
        over the graded conversations with their ``sample_weight`` [B]."""
        total, n = 0.0, 0
        for i, (d, levels) in enumerate(self.config.dimensions.items()):
            mask = label_mask[:, i]
            if not mask.any():
                continue
            k = len(levels)
            target = labels[mask, i, :k]
            logp = logits[d][mask].log_softmax(-1)
            w = sample_weight[mask] if sample_weight is not None else torch.ones_like(logp[:, 0])
            w = w / w.sum()
            ce = -((target * logp).sum(-1) * w).sum()
            pos = torch.arange(k, dtype=logp.dtype, device=logp.device)
            mse = (((logp.exp() @ pos - target @ pos) ** 2) * w).sum()
            total, n = total + ce + ordinal * mse, n + 1
        return total / max(n, 1)
