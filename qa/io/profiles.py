"""Column-mapping profiles for CSV/XLSX exports (one message per row).

A profile is a YAML file: which column holds each field, how the export spells roles, message types and
events, and the time zone of its naive times. Shipped profiles live in ``qa/io/profiles/``; a user adds one
by writing such a file and passing its path with ``--columns``. See docs/ingest.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qa.errors import InputError
from qa.schema import DEFAULT_TZ, MessageType, Platform, Role

PROFILE_DIR = Path(__file__).parent / "profiles"
FIELDS = ("conversation_id", "ts", "role", "text", "type", "event", "sender", "shop", "agent", "customer",
          "stars", "rating_label", "platform")
REQUIRED = ("conversation_id", "ts", "role")


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    platform: Platform = "other"
    timezone: str = DEFAULT_TZ
    columns: dict[str, str] = Field(description="field → column header")
    roles: dict[str, Role] = {}
    types: dict[str, MessageType] = {}
    events: dict[str, str] = {}
    sheet: str | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        """A zone the reader can use: refused here, not as one reject per input file."""
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception:  # noqa: BLE001 — ZoneInfoNotFoundError, ValueError (a path), OSError
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai or UTC)") from None
        return v

    def model_post_init(self, __context: Any) -> None:
        unknown = set(self.columns) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)} in columns (known: {', '.join(FIELDS)})")
        missing = [f for f in REQUIRED if f not in self.columns]
        if missing:
            raise ValueError(f"columns must map {', '.join(missing)}")

    def missing_columns(self, header: list[str]) -> list[str]:
        have = set(header)
        return [self.columns[f] for f in REQUIRED if self.columns[f] not in have]

    def score(self, header: list[str]) -> int:
        """How many of this profile's columns the header has (−1 when a required one is missing)."""
        if self.missing_columns(header):
            return -1
        return sum(c in header for c in self.columns.values())


def load_profile(path: Path) -> Profile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Profile.model_validate(data)
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"cannot read column profile: {e}", file=str(path)) from None
    except RecursionError:   # lists or mappings nested thousands deep
        raise InputError("cannot read column profile: its YAML is nested too deep to read", file=str(path)) from None
    except UnicodeDecodeError as e:  # GB18030, UTF-16, a binary file
        raise InputError(f"cannot read column profile: not UTF-8 text (byte {e.start} cannot be decoded); save "
                         "it as UTF-8", file=str(path)) from None
    except ValidationError as e:
        err = e.errors()[0]
        raise InputError(err["msg"].removeprefix("Value error, "), file=str(path),
                         field=".".join(str(p) for p in err["loc"]) or None) from None


@functools.lru_cache(maxsize=1)
def shipped_profiles() -> dict[str, Profile]:
    return {p.name: p for p in (load_profile(f) for f in sorted(PROFILE_DIR.glob("*.yaml")))}


def profile_stamp(spec: str | Path) -> str:
    """``--columns`` as a results stamp records it: a shipped name as given, a YAML file as its profile's name and a
    digest of what it says (not its path: the same file typed two ways is one setup, an edited one another)."""
    if Path(spec).suffix not in (".yaml", ".yml"):
        return str(spec)
    prof = load_profile(Path(spec))
    body = json.dumps(prof.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return f"{prof.name} sha256:{hashlib.sha256(body.encode()).hexdigest()[:16]}"


def resolve_profile(spec: str | Path | None, header: list[str], file: str, line: int = 1) -> Profile:
    """The profile named (shipped name or YAML path), else the shipped one that best fits the header (on
    ``line``)."""
    if spec is not None:
        if Path(spec).suffix in (".yaml", ".yml"):
            return load_profile(Path(spec))
        try:
            return shipped_profiles()[str(spec)]
        except KeyError:
            raise InputError(f"unknown column profile {spec!r} (shipped: {', '.join(shipped_profiles())}; "
                             "or pass a YAML file)", file=file) from None
    scored = sorted(((p.score(header), p.name) for p in shipped_profiles().values()), reverse=True)
    if not scored or scored[0][0] < 0:
        raise InputError(
            "no column profile fits this header " + repr(header[:12]) + "; pass --columns NAME|FILE.yaml "
            f"(shipped: {', '.join(shipped_profiles())})", file=file, line=line)
    return shipped_profiles()[scored[0][1]]
