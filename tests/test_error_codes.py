"""The error tables of README.md and docs/contract.md list exactly the codes the gateway can emit. The codes are
derived from the source, so a new one (a `code="..."` passed to an error, a `code = "..."` on an error class, a
code returned by a check's `error_code`, a refusal outcome of the SQL check's metric) fails this test until it is
documented."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import gateway
from gateway.errors import STATUS_TYPES, GatewayError
from gateway.observability.metrics import SQL_OUTCOMES

REPO = Path(__file__).resolve().parents[1]
CODE = re.compile(r"`([a-z][a-z0-9_]*)`")


def _error_classes() -> set[str]:
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        importlib.import_module(module.name)
    names, todo = {GatewayError.__name__}, [GatewayError]
    while todo:
        for sub in todo.pop().__subclasses__():
            names.add(sub.__name__)
            todo.append(sub)
    return names


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def codes_in_source() -> set[str]:
    """Every error code a response can carry, read from gateway/**.py."""
    error_classes = _error_classes()
    codes = {code for _, code in STATUS_TYPES.values()}
    # Every refusal the SQL check can count is the code of the 422 that carries it.
    codes.update(outcome for outcome in SQL_OUTCOMES if outcome != "valid")
    for path in (REPO / "gateway").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            # An error raised with its code, or an answer refused with one (the answer pipeline's verdicts).
            if isinstance(node, ast.Call) and (_callee(node) in error_classes or _callee(node) == "_refused"):
                codes.update(value for kw in node.keywords if kw.arg == "code" and (value := _string(kw.value)))
            elif isinstance(node, ast.ClassDef) and node.name in error_classes:
                for item in node.body:
                    target = item.targets[0] if isinstance(item, ast.Assign) else getattr(item, "target", None)
                    if isinstance(target, ast.Name) and target.id == "code" and (value := _string(item.value)):
                        codes.add(value)
            elif isinstance(node, ast.FunctionDef) and node.name == "error_code":
                codes.update(value for ret in ast.walk(node) if isinstance(ret, ast.Return)
                             and (value := _string(ret.value)))
    return codes


def codes_in_table(path: Path, heading: str) -> set[str]:
    """The backticked codes in the `code` column of the first table after `heading`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip("|").split("|")])
        elif table:
            break
    column = table[0].index("code")
    return {code for row in table[2:] for code in CODE.findall(row[column])}


def test_the_derivation_sees_codes_from_every_source() -> None:
    codes = codes_in_source()
    # a class attribute, a keyword literal, a check's error_code, the framework mapping, a code set at the server
    assert {"upstream_rejected", "invalid_prompt", "unsafe_sql", "method_not_allowed", "headers_too_large",
            "upstream_not_ready", "unsupported_dialect", "invalid_json"} <= codes


def test_readme_error_table_lists_every_code() -> None:
    documented = codes_in_table(REPO / "README.md", "Every error is OpenAI-shaped")
    emitted = codes_in_source()
    assert emitted - documented == set(), "emitted but not in README's error table"
    assert documented - emitted == set(), "in README's error table but never emitted"


def test_contract_error_table_lists_every_code() -> None:
    documented = codes_in_table(REPO / "docs" / "contract.md", "## Errors")
    emitted = codes_in_source()
    assert emitted - documented == set(), "emitted but not in docs/contract.md's error table"
    assert documented - emitted == set(), "in docs/contract.md's error table but never emitted"
