"""Rule checks: lexical rules on a spaCy PhraseMatcher plus sequence and timing rules."""

from qa.rules.base import REGISTRY, Context, Draft, Finding, register
from qa.rules.engine import RuleEngine

__all__ = ["REGISTRY", "Context", "Draft", "Finding", "RuleEngine", "register"]
