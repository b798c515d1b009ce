"""qa.errors: typed errors keep their fields across processes (a worker's error reaches the CLI whole)."""

from __future__ import annotations

import pickle

from qa.errors import InputError, ModelError, RubricError


def test_errors_keep_their_fields_when_pickled():
    e = pickle.loads(pickle.dumps(InputError("bad", file="a.jsonl", line=3, field="messages")))
    assert (type(e), e.message, e.file, e.line, e.field) == (InputError, "bad", "a.jsonl", 3, "messages")
    assert str(e) == "a.jsonl:3: messages: bad"
    r = pickle.loads(pickle.dumps(RubricError("unknown", file="r.yaml", key="profiles")))
    assert (r.file, r.key, str(r)) == ("r.yaml", "profiles", "r.yaml: [profiles] unknown")
    assert str(pickle.loads(pickle.dumps(ModelError("no model")))) == "no model"
