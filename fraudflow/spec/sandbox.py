"""jinja2's sandbox with bounds: a template of pipelines.yaml can neither allocate nor compute without limit.

jinja2's sandbox stops attribute games, not exhaustion: `{{ 'a' * 10**10 }}`, `{{ 'x' | center(10**9) }}`,
`{{ 10 ** 10 ** 8 }}`, nested loops over `range(100000)` or a namespace doubling a string in a loop would take
gigabytes or hours. Every way a template builds a value is charged against one `Budget` per document:

- operators: `*`, `+`, `**` and `%` are intercepted and their result size estimated *before* Python computes
  it; `~` (concatenation) is rewritten to a checked join;
- filters, function and method calls: inputs are measured, the known amplifiers (`center`, `indent`,
  `wordwrap`, `format`, `replace`, `join`, `batch`, `slice`, `sum`, `str.center/ljust/rjust/zfill/expandtabs`,
  `int.to_bytes`, `str.format`) have their output estimated first, and every result is measured;
- loops are charged per iteration, calls per call, and what templates output per character (`lipsum` is gone).

A value is measured as the characters it would print as, shared references counted each time (a list holding
one big string 1,000 times is as big as its printout). Measuring stops at the limit, so it costs little.
"""

from __future__ import annotations

import functools
import re
import string
import types
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from fraudflow.spec.budget import MAX_INT_BITS, MAX_VALUE, Budget, BudgetExceeded, size_of

# ------------------------------------------------------------------------------------------- size estimates

_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _width(text: str | None) -> int:
    if not text:
        return 0
    if text == "*" or len(text) > 9:
        raise BudgetExceeded(f"format width {text[:20]!r} not allowed in a template")
    return int(text)


def _largest(values: Iterable[Any], budget: Budget) -> int:
    return max((size_of(v, budget) for v in values), default=0)


def percent_size(fmt: str, args: Any, budget: Budget) -> int:
    """Characters of `fmt % args`, estimated from the conversions' widths and the arguments' sizes."""
    convs = _PERCENT.findall(fmt)
    items = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
    biggest = _largest(items, budget)
    return len(fmt) + sum(max(_width(w), _width(p)) for w, p in convs) + len(convs) * biggest


def format_size(fmt: str, args: tuple, kwargs: Mapping[str, Any], budget: Budget) -> int:
    """Characters of `fmt.format(*args, **kwargs)`, estimated the same way."""
    total, fields = len(fmt), 0
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise BudgetExceeded("nested format specifications are not allowed in a template")
        total += max((_width(d) for d in _DIGITS.findall(spec or "")), default=0)
    return total + fields * _largest((*args, *kwargs.values()), budget)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _filter_estimate(name: str, budget: Budget, args: tuple, kwargs: dict[str, Any]) -> int | None:
    """The output size of the filters that can make much from little, from their arguments."""
    value: Any = args[0] if args else None  # a filter's input: any template value
    rest = args[1:]

    def arg(i: int, key: str, default: Any) -> Any:
        return rest[i] if len(rest) > i else kwargs.get(key, default)

    if name == "center":
        return max(len(_text(value)), int(arg(0, "width", 80)))
    if name == "indent":
        width = arg(0, "width", 4)
        w = len(width) if isinstance(width, str) else int(width)
        s = _text(value)
        return len(s) + (s.count("\n") + 1) * max(w, 0)
    if name == "wordwrap":
        s, width, wrap = _text(value), int(arg(0, "width", 79)), arg(2, "wrapstring", None)
        return len(s) + (len(s) // max(width, 1) + 1) * len(wrap or "\n")
    if name == "format":
        return percent_size(_text(value), kwargs or tuple(rest), budget)
    if name == "replace":
        s, old, new = _text(value), _text(arg(0, "old", "")), _text(arg(1, "new", ""))
        count = arg(2, "count", None)
        n = len(s) + 1 if old == "" else s.count(old)
        if isinstance(count, int) and count >= 0:
            n = min(n, count)
        return len(s) + n * len(new)
    if name == "join":
        sep = _text(arg(0, "d", ""))
        return size_of(value, budget) + len(value) * len(sep)  # value is a list here (see _materialise)
    if name == "sum":
        return size_of(value, budget) + size_of(arg(1, "start", 0), budget)
    if name == "batch":
        fill = arg(1, "fill_with", None)
        return size_of(value, budget) + (int(arg(0, "linecount", 0)) if fill is not None else 0)
    if name == "slice":
        return size_of(value, budget) + 2 * int(arg(0, "slices", 0))
    return None


def _method_estimate(obj: Any, args: tuple, kwargs: dict[str, Any], budget: Budget) -> int | None:
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if isinstance(owner, (str, bytes)):
        n = len(owner)
        if name in ("center", "ljust", "rjust", "zfill"):
            return max(n, int(args[0]) if args else 0)
        if name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            return n + tabs * max(int(tab), 0)
        if name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            k = n + 1 if not old else owner.count(old)
            return n + k * len(new)
        if name == "join" and args:
            return size_of(args[0], budget) + len(args[0]) * n
    if isinstance(owner, int) and name == "to_bytes":
        return int(args[0]) if args else 1
    return None


# ------------------------------------------------------------------------------------------ the environment


class _Checks(NodeTransformer):
    """Rewrites a parsed template so that output, concatenation and loops go through the budget."""

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_call("bounded_output", child) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call("bounded_concat", nodes.List(node.nodes, lineno=node.lineno))

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call("bounded_iter", node.iter)
        return node


def _call(name: str, arg: nodes.Node) -> nodes.Call:
    return nodes.Call(
        nodes.EnvironmentAttribute(name, lineno=arg.lineno), [arg], [], None, None, lineno=arg.lineno
    )


# Filters whose input is consumed whole before their output is known: iterators are turned into (counted) lists.
_MATERIALISE = frozenset({"join", "sum"})


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment whose every allocation and loop is charged to `budget`."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, budget: Budget, **options: Any) -> None:
        super().__init__(**options)
        self.budget = budget
        self.on_access: Any = None  # called with (object, key) on every `a.b` / `a[b]`: provenance tracking
        self.globals.pop("lipsum", None)  # lipsum(n=10**9)
        self.filters = {name: self._bounded_filter(name, f) for name, f in self.filters.items()}

    # -- parsing: route output, `~` and loops through the checks
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _Checks().visit(super()._parse(source, name, filename))

    def getattr(self, obj: Any, attribute: str) -> Any:
        if self.on_access is not None:
            self.on_access(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if self.on_access is not None:
            self.on_access(obj, argument)
        return super().getitem(obj, argument)

    # -- hooks called by the rewritten template
    def bounded_output(self, value: Any) -> Any:
        size = size_of(value, self.budget)
        self.budget.value(size)
        self.budget.emit(size)
        return value

    def bounded_concat(self, parts: list[Any]) -> str:
        total = sum(size_of(p, self.budget) for p in parts)
        self.budget.value(total)
        return "".join(_text(p) for p in parts)

    def bounded_iter(self, iterable: Any) -> Iterator[Any]:
        for item in iterable:
            self.budget.op()
            yield item

    # -- operators, calls, filters
    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.budget.op()
        estimate = self._binop_estimate(operator, left, right)
        if estimate is not None:
            self.budget.value(estimate)
        return self._checked(self.binop_table[operator](left, right))

    def _binop_estimate(self, operator: str, left: Any, right: Any) -> int | None:
        seq = (str, bytes, list, tuple)
        if operator == "*":
            if isinstance(left, seq) and isinstance(right, int):
                return size_of(left, self.budget) * max(right, 0)
            if isinstance(right, seq) and isinstance(left, int):
                return size_of(right, self.budget) * max(left, 0)
            if isinstance(left, int) and isinstance(right, int):
                _check_bits(left.bit_length() + right.bit_length())
        elif operator == "+" and isinstance(left, seq) and isinstance(right, seq):
            return size_of(left, self.budget) + size_of(right, self.budget)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if abs(left) > 1:
                _check_bits(right * left.bit_length())
        elif operator == "%" and isinstance(left, str):
            return percent_size(left, right, self.budget)
        return None

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = __self.budget
        budget.op()
        for a in (*args, *kwargs.values()):
            if size_of(a, budget) > MAX_VALUE:
                raise BudgetExceeded(f"a template passes a value of more than {MAX_VALUE:,} characters")
        if isinstance(__obj, types.BuiltinMethodType):  # methods of Python's own types: 'x'.center(n), ...
            size_of(getattr(__obj, "__self__", None), budget)  # charges reading the receiver: big.count('x')
            if any(isinstance(a, int) and abs(a) > MAX_VALUE for a in (*args, *kwargs.values())):
                raise BudgetExceeded("a number argument too large for a method call in a template")
            if getattr(__obj, "__name__", "") == "join" and args and not isinstance(args[0], Sized):
                args = (list(__self.bounded_iter(args[0])), *args[1:])
            estimate = _method_estimate(__obj, args, kwargs, budget)
            if estimate is not None:
                budget.value(estimate)
        return __self._checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt, is_map = value.__self__, value.__name__ == "format_map"

        @functools.wraps(wrapper)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            named = args[0] if is_map and args and isinstance(args[0], Mapping) else kwargs
            self.budget.value(format_size(fmt, () if is_map else args, named, self.budget))
            return wrapper(*args, **kwargs)

        return bounded

    def _bounded_filter(self, name: str, f: Any) -> Any:
        first = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0  # environment/context comes first

        @functools.wraps(f)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            budget = self.budget
            budget.op()
            if name in _MATERIALISE and len(args) > first and not isinstance(args[first], Sized):
                args = (*args[:first], list(self.bounded_iter(args[first])), *args[first + 1 :])
            for a in (*args[first:], *kwargs.values()):
                if size_of(a, budget) > MAX_VALUE:
                    raise BudgetExceeded(
                        f"filter {name!r} given a value of more than {MAX_VALUE:,} characters"
                    )
            estimate = _filter_estimate(name, budget, args[first:], kwargs)
            if estimate is not None:
                budget.value(estimate)
            return self._checked(f(*args, **kwargs))

        return bounded

    def _checked(self, result: Any) -> Any:
        """Measure what a filter, call or operator returned; count an iterator's items as they come."""
        if isinstance(result, int) and not isinstance(result, bool):
            _check_bits(result.bit_length())
            return result
        if isinstance(result, Iterator) and not isinstance(result, (str, bytes)):
            return self._counted(result)
        self.budget.value(size_of(result, self.budget))
        return result

    def _counted(self, items: Iterator[Any]) -> Iterator[Any]:
        for item in items:
            self.budget.op()
            self.budget.value(size_of(item, self.budget))
            yield item


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise BudgetExceeded(f"a template would compute an integer of more than {MAX_INT_BITS:,} bits")
