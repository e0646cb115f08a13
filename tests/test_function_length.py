"""No function over 60 lines in ``etviz_lsp/`` or ``vscode-extension/src/`` (issue 25).

Python is read with ``ast``: functions, methods, nested functions and lambdas. TypeScript is
read with the TypeScript compiler's own parser (``tests/function_lengths.mjs``, through
``vscode-extension/node_modules/typescript``): declarations, methods, constructors, accessors,
arrow functions and function expressions. A function's lines run from its first decorator or
modifier to its last line, the functions nested in it included. Two tests on written samples
show that each check finds every kind of function one line over the limit, and not one at it.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

LIMIT = 60
PACKAGE = REPO_ROOT / "etviz_lsp"
EXTENSION_SOURCES = REPO_ROOT / "vscode-extension" / "src"
TYPESCRIPT = REPO_ROOT / "vscode-extension" / "node_modules" / "typescript"
TS_LENGTHS = REPO_ROOT / "tests" / "function_lengths.mjs"


@dataclass(frozen=True)
class Function:
    file: str
    line: int
    name: str
    lines: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.name} ({self.lines} lines)"


def python_functions(paths: Iterable[Path]) -> list[Function]:
    """Every function and lambda in the files, named by where it sits (``Class.method``)."""
    found: list[Function] = []

    def visit(node: ast.AST, file: str, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                name = f"{scope}{getattr(child, 'name', '<lambda>')}"
                decorators = getattr(child, "decorator_list", [])
                first = min([d.lineno for d in decorators] + [child.lineno])
                last = child.end_lineno or child.lineno
                found.append(Function(file, first, name, last - first + 1))
                name += "."
            elif isinstance(child, ast.ClassDef):
                name = f"{scope}{child.name}."
            visit(child, file, name)

    for path in paths:
        file = str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)
        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), file, "")
    return found


def typescript_functions(paths: Iterable[Path]) -> list[Function]:
    node = shutil.which("node")
    if node is None or not TYPESCRIPT.is_dir():
        pytest.fail(
            "the TypeScript check needs node and vscode-extension/node_modules/typescript: "
            "run `npm ci` in vscode-extension (`make ext-test` does)"
        )
    done = subprocess.run(
        [node, str(TS_LENGTHS), *map(str, paths)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [Function(**entry) for entry in json.loads(done.stdout)]


def too_long(functions: Iterable[Function]) -> list[str]:
    return [str(f) for f in functions if f.lines > LIMIT]


def test_no_python_function_in_etviz_lsp_is_over_60_lines() -> None:
    functions = python_functions(sorted(PACKAGE.rglob("*.py")))
    assert any(f.name == "build_parser" for f in functions)  # the walk saw the package
    assert too_long(functions) == []


def test_no_typescript_function_in_the_extension_is_over_60_lines() -> None:
    sources = sorted(EXTENSION_SOURCES.glob("*.ts"))
    functions = typescript_functions(p.relative_to(REPO_ROOT) for p in sources)
    # every file with code was read (the generated kinds table is data only)
    with_code = {str(p.relative_to(REPO_ROOT)) for p in sources
                 if not p.read_text().startswith("// Generated")}
    assert {f.file for f in functions} == with_code
    assert any(f.name == "activate" for f in functions)
    assert too_long(functions) == []


def _lines(count: int, indent: str, statement: str) -> str:
    return "".join(f"{indent}{statement}\n" for _ in range(count))


def test_the_python_check_finds_every_kind_of_function_over_60_lines(tmp_path: Path) -> None:
    body = _lines(LIMIT - 1, "    ", "x = 1")  # with its `def` line: 60 lines
    inner = _lines(LIMIT - 1, "        ", "x = 1")
    sample = tmp_path / "sample.py"
    sample.write_text(
        f"def fits():\n{body}\n"
        f"@decorated\ndef decorated_fits_not():\n{body}\n"
        f"async def long_function():\n{body}    x = 2\n\n"
        f"class Holder:\n    def long_method(self):\n{inner}        x = 2\n\n"
        f"def outer():\n    def inner():\n{inner}        x = 2\n\n"
        f"f = lambda: (\n{_lines(LIMIT - 1, '    ', '1 +')}    1)\n",
        encoding="utf-8",
    )
    reported = {f.name: f.lines for f in python_functions([sample]) if f.lines > LIMIT}
    assert reported == {
        "decorated_fits_not": 61, "long_function": 61, "Holder.long_method": 61,
        "outer": 62, "outer.inner": 61, "<lambda>": 61,
    }
    assert too_long(python_functions([sample]))[0] == f"{sample}:62 decorated_fits_not (61 lines)"


def test_the_typescript_check_finds_every_kind_of_function_over_60_lines(tmp_path: Path) -> None:
    body = _lines(LIMIT - 2, "  ", "x = 1;")  # with its first and last lines: 60 lines
    long_body = body + "  x = 2;\n"
    sample = tmp_path / "sample.ts"
    sample.write_text(
        f"function fits(): void {{\n{body}}}\n"
        f"export async function longDeclaration(): Promise<void> {{\n{long_body}}}\n"
        f"class Holder {{\n"
        f"  constructor() {{\n{long_body}  }}\n"
        f"  longMethod(): void {{\n{long_body}  }}\n"
        f"  get longGetter(): number {{\n{long_body}  return 1;\n  }}\n"
        f"}}\n"
        f"const longArrow = (): void => {{\n{long_body}}};\n"
        f"register('id', function () {{\n{long_body}}});\n",
        encoding="utf-8",
    )
    reported = {f.name: f.lines for f in typescript_functions([sample]) if f.lines > LIMIT}
    assert reported == {
        "longDeclaration": 61, "constructor": 61, "longMethod": 61, "longGetter": 62,
        "longArrow": 61, "(function expression)": 61,
    }
