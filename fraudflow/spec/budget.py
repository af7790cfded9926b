"""What the templates of one pipelines.yaml may build, output and do (see fraudflow/spec/sandbox.py).

Kept apart from the sandbox so that the fast path of templates (`{{ vars.x }}`, no jinja2) charges the same
budget without importing jinja2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_VALUE = 1 << 20  # characters (or list items) of any one value a template builds or outputs
MAX_OUTPUT = 5 << 20  # characters all the templates of a document output together
MAX_ALLOC = 16 << 20  # characters of all the values built while rendering a document's templates
MAX_OPS = 100_000  # loop iterations, calls, operators and filters in a document's templates
MAX_INT_BITS = 10_000  # about 3,000 digits; Python cannot even print an integer of 4,300
# A filter or method reads its input whole (`big.count('x')`, `big | upper`): charged one op per this many
# characters, so a loop over such calls runs out of budget in about a second rather than minutes.
SCAN_CHARS_PER_OP = 4096


class BudgetExceeded(Exception):
    """A template went over one of the bounds above. `document` is True when the whole document's budget ran out
    (every further template would fail too), False when one value was too large."""

    def __init__(self, message: str, document: bool = False) -> None:
        super().__init__(message)
        self.document = document


class Budget:
    """What the templates of one document may still do."""

    def __init__(self) -> None:
        self.ops = 0
        self.alloc = 0
        self.output = 0

    def op(self, n: int = 1) -> None:
        self.ops += n
        if self.ops > MAX_OPS:
            raise BudgetExceeded(
                f"the templates do too much work: more than {MAX_OPS:,} loop iterations, calls and filters",
                document=True,
            )

    def value(self, size: int) -> None:
        """A value of `size` characters is about to be built."""
        if size > MAX_VALUE:
            raise BudgetExceeded(f"a template would build a value of more than {MAX_VALUE:,} characters")
        self.alloc += size
        if self.alloc > MAX_ALLOC:
            raise BudgetExceeded(
                f"the templates build more than {MAX_ALLOC:,} characters of values in all", document=True
            )

    def emit(self, size: int) -> None:
        """Templates output `size` more characters."""
        self.output += size
        if self.output > MAX_OUTPUT:
            raise BudgetExceeded(
                f"the templates output more than {MAX_OUTPUT:,} characters in all (aliased templates count "
                "once per use)",
                document=True,
            )


def size_of(value: Any, budget: Budget | None = None, limit: int = MAX_VALUE) -> int:
    """The characters `value` prints as, counted up to just over `limit` (shared references each time)."""
    total, visited, stack = 0, 0, [value]
    while stack and total <= limit:
        v = stack.pop()
        visited += 1
        if isinstance(v, (str, bytes, bytearray)):
            total += len(v)
        elif isinstance(v, bool) or v is None:
            total += 5
        elif isinstance(v, int):
            total += v.bit_length() // 3 + 1
        elif isinstance(v, float):
            total += 24
        elif isinstance(v, Mapping):
            total += 2 + 4 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(v)
            stack.extend(v)
        elif isinstance(v, range):
            total += 8 * len(v)
        else:
            total += 16
    if budget is not None:  # measuring is work too: a loop measuring a long list each time must run out
        budget.op(visited // 8 + total // SCAN_CHARS_PER_OP)
    return total
