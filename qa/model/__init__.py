"""The rubric classifier: a transformers encoder over chat turns with one head per rubric dimension.

Modules: ``inputs`` (conversation → model inputs), ``vocab`` (char tokenizer), ``ngrams`` (char n-gram channel),
``modeling`` (the network), ``data`` (labelled data), ``pretrain`` / ``train`` (loops), ``predict``,
``metrics`` and ``evaluate``, ``card`` (MODEL_CARD.md).
"""
