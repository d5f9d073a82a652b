"""Plausibility gates: checks a template declares in `template.toml` and the harness evaluates.

A gate is a boolean expression over a run's metrics and config (flattened to one namespace),
e.g. `l0 <= 0.25 * d_sae`. Expressions are parsed with `ast` and evaluated over a closed set
of node types (numbers, names, arithmetic, comparisons, and/or/not, min/max/abs): a manifest
cannot run arbitrary code. Pure Python: the agent imports this without torch.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["fail", "warn"]

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod}
_CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Eq: operator.eq, ast.NotEq: operator.ne}
_FUNCS = {"min": min, "max": max, "abs": abs}


@dataclass(frozen=True)
class Gate:
    """One declared check."""

    name: str
    """Short identifier, e.g. `l0_fraction`."""
    check: str
    """Expression that must be true, over metric and config names."""
    message: str
    """Plain-words explanation shown when it fails; may use `{name}` fields from the run."""
    severity: Severity = "fail"
    """`fail` blocks the paper; `warn` is reported only."""


@dataclass(frozen=True)
class GateResult:
    """A gate evaluated on one run."""

    name: str
    passed: bool | None
    """None when the run lacks a value the check needs."""
    severity: Severity
    message: str
    """The filled-in message (for failures) or the check (for passes)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GateSyntaxError(ValueError):
    """A gate expression uses something outside the allowed subset."""


def parse_gate(raw: Mapping[str, Any]) -> Gate:
    """Build a Gate from a manifest table, validating its expression."""
    for key in ("name", "check", "message"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise GateSyntaxError(f"gate is missing the text field '{key}'")
    severity = raw.get("severity", "fail")
    if severity not in ("fail", "warn"):
        raise GateSyntaxError(f"gate '{raw['name']}': severity must be 'fail' or 'warn'")
    _validate(ast.parse(raw["check"], mode="eval"), raw["name"])
    return Gate(raw["name"], raw["check"], raw["message"], severity)


def _validate(tree: ast.AST, name: str) -> None:
    allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
               ast.BinOp, ast.Compare, ast.Name, ast.Load, ast.Constant, ast.Call,
               *_BINOPS, *_CMPOPS)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise GateSyntaxError(f"gate '{name}': '{type(node).__name__}' is not allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
            raise GateSyntaxError(f"gate '{name}': only min/max/abs may be called")


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _FUNCS:
            return _FUNCS[node.id]
        if node.id not in env or env[node.id] is None:
            raise KeyError(node.id)
        return env[node.id]
    if isinstance(node, ast.UnaryOp):
        val = _eval(node.operand, env)
        return (not val) if isinstance(node.op, ast.Not) else -val
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.BoolOp):
        vals = [_eval(v, env) for v in node.values]
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, env)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return _eval(node.func, env)(*[_eval(a, env) for a in node.args])
    raise GateSyntaxError(f"cannot evaluate {type(node).__name__}")


def namespace(metrics: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """Config values, then metrics on top (flat; nested dicts are skipped)."""
    env: dict[str, Any] = {}
    for source in (config, metrics):
        env.update({k: v for k, v in source.items() if isinstance(v, (int, float, bool))})
    return env


class _Fields(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def evaluate(gates: list[Gate], metrics: Mapping[str, Any], config: Mapping[str, Any]) -> list[GateResult]:
    """Evaluate every gate on one run's metrics and config."""
    env = namespace(metrics, config)
    fields = _Fields({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in env.items()})
    results = []
    for gate in gates:
        try:
            passed: bool | None = bool(_eval(ast.parse(gate.check, mode="eval"), env))
            message = gate.message.format_map(fields) if not passed else gate.check
        except KeyError as missing:
            passed, message = None, f"cannot check '{gate.check}': the run reports no {missing}"
        results.append(GateResult(gate.name, passed, gate.severity, message))
    return results


def failures(results: list[GateResult], severity: Severity | None = "fail") -> list[GateResult]:
    """The results that did not pass (of one severity, or all when None)."""
    return [r for r in results if r.passed is not True and (severity is None or r.severity == severity)]
