"""Conditions of ``dsl.If``/``Elif``/``Else`` as the CEL text kfp writes in
``triggerPolicy.condition`` (operands cast so both sides have one type)."""

from __future__ import annotations

from typing import Any

from ketch.pipelines.dsl._channels import ConditionOperation, PipelineChannel, ir_input_name
from ketch.pipelines.dsl._pipeline import CompileError

__all__ = ["cel_condition"]


def _operand_type(operand: Any) -> str:
    if isinstance(operand, PipelineChannel):
        kind = operand.ir_type
        if kind in ("LIST", "STRUCT", None) or operand.is_artifact:
            raise CompileError(f"a condition compares primitive values; "
                               f"{ir_input_name(operand.full_name)} is "
                               f"{operand.channel_type}")
        return kind
    if isinstance(operand, bool):
        return "BOOLEAN"
    if isinstance(operand, int):
        return "NUMBER_INTEGER"
    if isinstance(operand, float):
        return "NUMBER_DOUBLE"
    if isinstance(operand, str):
        return "STRING"
    raise CompileError(f"a condition cannot compare {operand!r}")


def cel_condition(op: ConditionOperation) -> str:
    """One condition as the CEL text kfp writes (``int(inputs.parameter_values[...]) > 3``)."""
    kinds = {_operand_type(op.left), _operand_type(op.right)}
    if len(kinds) == 1:
        canonical = kinds.pop()
    elif "STRING" in kinds:
        canonical = "STRING"
    elif "BOOLEAN" in kinds:
        canonical = "BOOLEAN"
    else:
        canonical = "NUMBER_DOUBLE"
    texts = []
    for operand in (op.left, op.right):
        kind = _operand_type(operand)
        if isinstance(operand, PipelineChannel):
            text = f"inputs.parameter_values['{ir_input_name(operand.full_name)}']"
            if kind == "NUMBER_INTEGER":
                text = f"int({text})"
        elif isinstance(operand, str):
            text = f"'{operand}'"
        elif isinstance(operand, bool):
            text = str(operand).lower()
        else:
            text = str(operand)
        if kind != canonical:
            if canonical == "STRING":
                text = f"'{text}'"
            elif canonical == "BOOLEAN":
                text = "true" if float(text) == 0 else "false"
            else:
                text = f"double({text})"
        texts.append(text)
    condition = f"{texts[0]} {op.operator} {texts[1]}"
    return f"!({condition})" if op.negate else condition
