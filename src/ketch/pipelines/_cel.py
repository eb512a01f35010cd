"""The CEL subset that KFP writes into ``triggerPolicy.condition``, evaluated.

KFP compiles ``dsl.If(x > 3)`` to a Common Expression Language string such as
``int(inputs.parameter_values['pipelinechannel--x']) > 3``, an ``Elif``/``Else``
to ``!(earlier) && ...``, and leaves the evaluation to the backend. This module
is a real tokenizer, a precedence-climbing parser and an evaluator for CEL's
expression language with CEL's semantics, not a pattern match on KFP's output:

* literals: int (``7``, ``0x1F``, ``-3``), uint (``7u``), double (``1.5``, ``1e3``,
  ``.5``), strings (single, double, triple-quoted, raw ``r'...'``, with CEL's
  escapes), bytes (``b'..'``), ``true``/``false``/``null``, lists ``[..]`` and
  maps ``{k: v}``;
* operators by precedence: ``?:``, ``||``, ``&&``, ``== != < <= > >= in``,
  ``+ -``, ``* / %``, unary ``! -``, then ``.field``, ``[index]``, calls;
* functions: ``int``, ``uint``, ``double``, ``string``, ``bool``, ``bytes``,
  ``dyn``, ``size`` (also as a method), ``has``, and the string methods
  ``contains``, ``startsWith``, ``endsWith``, ``matches``.

Semantics follow the CEL spec: int, uint and double never mix in arithmetic
(``1 + 1.0`` is an error) but compare by value across types (``1 == 1.0``);
values of other different types are unequal and cannot be ordered; ``&&`` and
``||`` are commutative about errors (``false && <error>`` is ``false``); int
arithmetic is 64-bit and overflow is an error; ``int(2.9)`` truncates to 2.

The variable ``inputs`` holds ``parameter_values``, the task's input
parameters by name, as KFP's drivers bind it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from ketch.pipelines._cel_eval import Evaluator
from ketch.pipelines._cel_syntax import CelError, UInt, parse, show, type_name

__all__ = ["CelError", "UInt", "compile_expression", "evaluate", "evaluate_condition"]


@functools.lru_cache(maxsize=512)
def compile_expression(expression: str) -> Callable[..., Any]:
    """Parse ``expression`` once; the result, called with ``(parameter_values,
    variables=None)``, evaluates it.

    Raises ``CelError`` for a syntax error. Parsed expressions are cached, so a
    condition inside a 200-way ``ParallelFor`` is parsed once.
    """
    if not isinstance(expression, str):
        raise CelError("the expression must be a string", 0, str(expression))
    if not expression.strip():
        raise CelError("the expression is empty", 0, expression)
    tree = parse(expression)

    def run(parameter_values: Mapping[str, Any], variables: Mapping[str, Any] | None = None,
            ) -> Any:
        bound = {"inputs": {"parameter_values": parameter_values}, **(variables or {})}
        return Evaluator(expression, bound).run(tree)

    return run


def evaluate(expression: str, parameter_values: Mapping[str, Any], *,
             variables: Mapping[str, Any] | None = None) -> Any:
    """The value of ``expression`` with ``inputs.parameter_values`` bound to
    ``parameter_values`` (and any other top-level ``variables``). Raises
    ``CelError`` (with the position) on any error."""
    return compile_expression(expression)(parameter_values, variables)


def evaluate_condition(expression: str, parameter_values: Mapping[str, Any], *,
                       variables: Mapping[str, Any] | None = None) -> bool:
    """A ``triggerPolicy.condition``: like ``evaluate``, but the result must be a bool."""
    value = evaluate(expression, parameter_values, variables=variables)
    if not isinstance(value, bool):
        raise CelError(f"the condition evaluated to {type_name(value)} "
                       f"{show(value)}, not a bool", 0, expression)
    return value
