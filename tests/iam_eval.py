"""A small evaluator of IAM identity policies, for the tests: is (action, resource, context) allowed?

Allow statements only (fraudflow writes no Deny); `*` and `?` wildcards in actions (case-insensitive) and
resources (case-sensitive), as IAM matches them; the condition operators fraudflow uses (StringEquals,
StringLike; a key absent from the request context fails the condition, as in IAM). Anything else in a policy is
refused loudly, so the evaluator never silently allows what it does not understand.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

OPERATORS = ("StringEquals", "StringLike")


def _list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@cache
def _regex(pattern: str, case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case else re.IGNORECASE)


def matches(pattern: str, value: str, *, case: bool = True) -> bool:
    return bool(_regex(pattern, case).match(value))


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for op, entries in condition.items():
        if op not in OPERATORS:
            raise AssertionError(f"the test evaluator does not know condition operator {op}")
        for key, expected in entries.items():
            if key not in context:
                return False
            exact = op == "StringEquals"
            if not any((context[key] == e) if exact else matches(e, context[key]) for e in _list(expected)):
                return False
    return True


def allowed(
    policy: dict[str, Any], action: str, resource: str, context: dict[str, str] | None = None
) -> bool:
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow" and set(st) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, st
        if not any(matches(a, action, case=False) for a in _list(st["Action"])):
            continue
        if not any(matches(r, resource) for r in _list(st["Resource"])):
            continue
        if _condition_holds(st.get("Condition") or {}, context or {}):
            return True
    return False
