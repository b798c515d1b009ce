"""Small typed checks of decoded JSON values (records read back from files qa wrote), for readers that must
not hand a renderer a value of the wrong type: ``check`` raises ``FieldError`` naming the path of the bad
value (``findings[0].span``, ``rating.stars``) and saying what it should be and what it is.

Type names: ``str``, ``int``, ``num`` (a finite number; an integer is one), ``bool``, ``list``, ``obj``,
``null``, ``span`` (``[start, end]``, two integers); a field's types are joined by ``|`` (``"str|null"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

WORDS = {"str": "a string", "int": "an integer", "num": "a number", "bool": "true or false", "list": "a list",
         "obj": "an object", "null": "null", "span": "[start, end]"}


class FieldError(ValueError):
    """A value of the wrong type or out of range: ``field`` is its path in the record."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def kind(v: Any) -> str:
    """The type name of a decoded JSON value (``nan`` / ``inf`` for a float that is not finite)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "num" if math.isfinite(v) else repr(v)
    if isinstance(v, str):
        return "str"
    if isinstance(v, (list, tuple)):
        return "list"
    if isinstance(v, Mapping):
        return "obj"
    return type(v).__name__


def _is(v: Any, t: str) -> bool:
    k = kind(v)
    if t == "span":
        return k == "list" and len(v) == 2 and all(kind(x) == "int" for x in v)
    return k == t or (t == "num" and k == "int")


_EXACT = {"str": (str,), "int": (int,), "num": (int, float), "bool": (bool,), "list": (list, tuple), "obj": (dict,),
          "null": (type(None),), "span": ()}
_FAST: dict[str, frozenset] = {}


def _ok(v: Any, types: str) -> bool:
    """``check`` without the message: exact JSON types first (the common case, cheap), else the full test."""
    exact = _FAST.get(types)
    if exact is None:
        exact = _FAST[types] = frozenset(t for name in types.split("|") for t in _EXACT[name])
    t = type(v)
    if t in exact:
        return t is not float or math.isfinite(v)
    return any(_is(v, name) for name in types.split("|"))


def check(path: str, v: Any, types: str) -> None:
    """Raise ``FieldError(path, …)`` unless ``v`` has one of ``types``."""
    if not _ok(v, types):
        allowed = types.split("|")
        got = kind(v)
        got = repr(list(v))[:40] if got == "list" and "span" in allowed else WORDS.get(got, got)
        raise FieldError(path, f"must be {' or '.join(WORDS[t] for t in allowed)}, not {got}")


def check_fields(path: str, obj: Any, spec: Mapping[str, str]) -> None:
    """``obj`` is an object whose fields in ``spec`` (absent reads null) have their types; others unchecked."""
    check(path, obj, "obj")
    for k, types in spec.items():
        x = obj.get(k)
        if not _ok(x, types):
            check(f"{path}.{k}" if path else k, x, types)


def check_list(path: str, v: Any, item: str | Mapping[str, str], *, null: bool = True) -> None:
    """``v`` is a list (or null) of ``item`` values, or of objects with the fields ``item``."""
    check(path, v, "list|null" if null else "list")
    for i, x in enumerate(v or ()):
        if isinstance(item, str):
            if not _ok(x, item):
                check(f"{path}[{i}]", x, item)
        else:
            try:
                check_fields("", x, item)
            except FieldError as e:   # the path is spelled out only for the one that fails
                raise FieldError(f"{path}[{i}]" + (f".{e.field}" if e.field else ""), e.message) from None


def check_map(path: str, v: Any, value: str, *, null: bool = True) -> None:
    """``v`` is an object (or null) whose values are ``value``."""
    check(path, v, "obj|null" if null else "obj")
    for k, x in (v or {}).items():
        if not _ok(x, value):
            check(f"{path}.{k}", x, value)


def check_range(path: str, v: float, lo: float, hi: float) -> None:
    if not lo <= v <= hi:
        raise FieldError(path, f"must be a number from {lo:g} to {hi:g}, not {v:g}")
