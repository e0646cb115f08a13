"""One table of kinds, everywhere (issue 25): ``etviz_lsp/graph/inputs.py`` decides what a
file is, without case, and nothing else in the server or the extension compares suffixes.

- The grep: every module of ``etviz_lsp/`` and ``vscode-extension/src/`` is read for a
  comparison by suffix (``.suffix``, ``with_suffix``, ``endswith(".pte")``, a literal kind
  suffix, ``.endsWith('.py')``, ...) outside the table's files; the grep itself is tried on
  the comparisons this issue removed, so it is known to fail when one comes back.
- The extension's copy of the table (generated) and ``package.json``'s menus follow the
  Python table (``scripts/write_input_kinds.py --check``), and the check fails when not.
- ``model.PTE`` / ``Model.Pt2`` open through ``etviz-lsp --once`` (a real subprocess, real
  files; the ETRecord beside the program found in any case). The language server's side is
  in ``test_lsp_pte.py``, a run's upper-case artifacts in ``test_worker_targets.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import tokenize
from pathlib import Path
from types import ModuleType

import pytest
import torch

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import inputs
from tests import corpus
from tests.conftest import PYTHON, REPO_ROOT
from tests.test_pte_etrecord import artifacts  # noqa: F401 (session fixture)

TABLE_FILES = frozenset({
    "etviz_lsp/graph/inputs.py",
    "vscode-extension/src/input_kinds.ts",
    "vscode-extension/src/input_kinds_table.ts",
})  # fmt: skip
# Comparisons by suffix that decide no input kind, each with why it is not in the table.
NOT_KINDS = {
    ("etviz_lsp/graph/core/source.py", 'not path.endswith(".py")'):
        "a stack trace's frame or an imported module's file is the user's when it is Python "
        "source (not .so, .pyc, <frozen>): the interpreter's rule, not a file etviz opens; "
        "and graph/core is a floor below graph/inputs.py",
    ("etviz_lsp/graph/readers/etrecord.py", "not n.endswith(_PICKLED_SUFFIXES)"):
        "the names of entries inside an ETRecord's zip (``*_state_dict``: pickled), not files",
}  # fmt: skip

_NAMES = "|".join(re.escape(s[1:]) for s in inputs.suffixes())
# Python code (outside strings and comments): Path.suffix, suffix swaps and splits, endswith
# or removesuffix with a suffix held in a name (ARTIFACT_SUFFIXES, kind.suffix).
_PY_CODE = re.compile(
    r"\.suffix(es)?\b|\b(with_suffix|splitext)\(|\b(endswith|removesuffix)\([\w.]*suffix", re.I
)
# A string that is a kind's suffix (".pte", in any case), or a pattern matching one (\.pte).
_KIND_LITERAL = re.compile(rf"^\.({_NAMES})$|\\\.({_NAMES})\b", re.I)
# TypeScript: a literal kind suffix or pattern, endsWith on a dotted literal or a suffix
# field, an extension compared, a glob built from a suffix.
_TS = re.compile(
    rf"""(['"`])\.({_NAMES})\1|\\\.({_NAMES})\b|\.endsWith\(\s*['"`]\.\w|\.endsWith\([^)]*suffix"""
    r"""|extname\([^)]*\)\s*[!=]==?|[!=]==?\s*[\w.]*extname\(|\*\.?\$\{[^}]*suffix""",
    re.I,
)


def python_comparisons(text: str) -> list[tuple[int, str]]:
    """(line, source line) of each comparison by suffix in Python ``text``."""
    lines = text.splitlines()
    code = list(lines)  # the lines with strings and comments blanked out
    found: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in (tokenize.STRING, tokenize.COMMENT):
            continue
        (row, col), (end_row, end_col) = token.start, token.end
        if token.type == tokenize.STRING and _suffix_string(token.string):
            found.add(row)
        for r in range(row, end_row + 1):
            start, end = (col if r == row else 0), (end_col if r == end_row else len(code[r - 1]))
            code[r - 1] = code[r - 1][:start] + " " * (end - start) + code[r - 1][end:]
    found.update(row for row, line in enumerate(code, 1) if _PY_CODE.search(line))
    return [(row, lines[row - 1].strip()) for row in sorted(found)]


def _suffix_string(literal: str) -> bool:
    prefix = literal[: len(literal) - len(literal.lstrip("rbufRBUF"))]
    if "f" in prefix.lower():  # the code inside an f-string counts as code
        return bool(_PY_CODE.search(literal) or _KIND_LITERAL.search(literal))
    value = ast.literal_eval(literal)
    return isinstance(value, str) and bool(_KIND_LITERAL.search(value))


def ts_comparisons(text: str) -> list[tuple[int, str]]:
    """(line, source line) of each comparison by suffix in TypeScript ``text``; comments
    (a line's ``//`` tail, doc comment lines) are not code."""
    found = []
    for row, line in enumerate(text.splitlines(), 1):
        code = re.sub(r"(^|\s)//.*$", "", line)
        if code.strip().startswith(("*", "/*")):
            continue
        if _TS.search(code):
            found.append((row, line.strip()))
    return found


def _sources() -> list[tuple[str, str]]:
    files = sorted((REPO_ROOT / "etviz_lsp").rglob("*.py"))
    files += sorted((REPO_ROOT / "vscode-extension" / "src").rglob("*.ts"))
    return [(p.relative_to(REPO_ROOT).as_posix(), p.read_text()) for p in files]


def _outside_the_table() -> list[str]:
    found = []
    for name, text in _sources():
        if name in TABLE_FILES:
            continue
        scan = python_comparisons if name.endswith(".py") else ts_comparisons
        for row, line in scan(text):
            if not any(name == where and snippet in line for where, snippet in NOT_KINDS):
                found.append(f"{name}:{row}: {line}")
    return found


def test_no_suffix_comparison_outside_the_kinds_table() -> None:
    assert _outside_the_table() == [], "decide a file's kind through graph/inputs.py"
    for (where, snippet), why in NOT_KINDS.items():  # each exception is still there
        assert snippet in (REPO_ROOT / where).read_text(), (where, why)


def test_the_grep_finds_the_comparisons_this_issue_removed() -> None:
    removed = [  # as they stood in once.py, pte_reader, worker/, lsp/ before
        'if etrecord is not None and kind.suffix != ".pte":',
        'beside = path.with_suffix(".etrecord")',
        'ARTIFACT_SUFFIXES = (".pte", ".pt2", ".etrecord")',
        "return os.fsdecode(path).endswith(ARTIFACT_SUFFIXES)",
        'if entry.name.endswith(".py") and entry.is_file(follow_symlinks=False):',
        "if source.suffix not in SOURCE_SUFFIXES:",
        'if name.lower().endswith(".PTE"):',
        'if re.search(r"\\.pt2$", name):',
        'message = f"unsupported file type {path.suffix!r}"',
        "stem, ext = os.path.splitext(name)",
    ]
    for line in removed:
        assert python_comparisons(f"def f():\n    {line}\n"), line
    kept = [  # graph-owned names, zip members, prose, comments: no kind decided
        'if n.endswith(".json"):', 'PROGRAM = "program.pte"', 'help="FILE (.pt2, .pte)"',
        '"""A ``.pte`` program."""', 'x = 1  # path.suffix == ".py"',
        'name.removesuffix(".json")', 'if "/" in text or text.endswith("\\\\"):',
    ]
    for line in kept:
        assert python_comparisons(f"def f():\n    {line}\n") == [], line
    ts_removed = [
        "if (!uri.fsPath.endsWith('.py')) {",
        "return kinds.some((kind) => lower.endsWith(kind.suffix.toLowerCase()));",
        "pattern: `**/*${kind.suffix}`,",
        "if (path.extname(file) === '.pte') {",
        "const ok = /\\.etrecord$/i.test(name);",
        'if (name.endsWith(".onnx")) {',
    ]
    for line in ts_removed:
        assert ts_comparisons(line), line
    ts_kept = [
        "const base = externalRoot.endsWith('/') ? externalRoot : `${externalRoot}/`;",
        "const extension = path.extname(file);", "// a .pte's graph: uri.endsWith('.pte')",
        " * is its parent's plus `/name` (an XNNPACK delegate inside a .pte method),",
    ]
    for line in ts_kept:
        assert ts_comparisons(line) == [], line


# ---- the extension's table and package.json follow the Python one -------------------------


def _writer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "write_input_kinds", REPO_ROOT / "scripts" / "write_input_kinds.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_extension_table_and_menus_follow_the_python_table() -> None:
    check = subprocess.run([PYTHON, "scripts/write_input_kinds.py", "--check"], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stderr
    writer = _writer()
    table = writer.TABLE.read_text()
    for kind in inputs.KINDS:
        assert f"suffix: '{kind.suffix}'" in table
    package = json.loads(writer.PACKAGE.read_text())
    menus = package["contributes"]["menus"]
    (title,) = menus["editor/title"]
    assert title["when"] == "resourceExtname =~ /^\\.(py|pt2|pte|etrecord)$/i"
    assert re.search(title["when"].split("=~ /")[1].rsplit("/", 1)[0], ".PTE", re.I)


def test_the_check_fails_when_the_extension_and_the_table_differ() -> None:
    writer = _writer()
    kinds = inputs.client_info()
    table, package = writer.TABLE.read_text(), json.loads(writer.PACKAGE.read_text())
    assert writer.differences(kinds, table, package) == []
    more = [*kinds, {"suffix": ".onnx", "runsScript": False, "needsTrust": False,
                     "mayUnpickle": False}]  # fmt: skip
    found = " ".join(writer.differences(more, table, package))
    assert "input_kinds_table.ts: not the Python table" in found
    assert "workspaceContains:**/*.onnx" in found
    assert found.count("etviz.visualize") == 2  # both menus that offer it
    package["contributes"]["menus"]["editor/context"][0]["when"] = "resourceExtname == .py"
    assert "etviz.showInGraph" in " ".join(writer.differences(kinds, table, package))


# ---- the table itself: any case, companions, options --------------------------------------


def test_kinds_match_without_case(tmp_path: Path) -> None:
    assert inputs.kind_of("model.PTE") is inputs.kind_of(Path("w/model.pte"))
    assert inputs.kind_of("Model.Pt2") is not None and inputs.kind_of("Model.Pt2").may_unpickle
    assert inputs.is_script("file:///w/Export.PY") and not inputs.is_script("w/m.pyc")
    assert inputs.kind_of("w/.pte") is None  # a hidden file named .pte has no suffix
    for name in ("w/.pte", "w/..pte", "w/m.", "w.d/m", "m.tar.PTE", "w/a..pte", "", "."):
        assert inputs.suffix_of(name) == os.path.splitext(name)[1], name  # the same rule
    assert [inputs.is_artifact(n) for n in ("a.PTE", "b.pt2", "c.Etrecord", "d.py", "e.txt")] \
        == [True, True, True, False, False]  # fmt: skip
    with pytest.raises(EtvizError, match=r"m\.ONNX: unsupported file type '\.ONNX'"):
        inputs.known_kind(Path("m.ONNX"))


def test_the_etrecord_beside_a_program_is_found_in_either_case(tmp_path: Path) -> None:
    program = tmp_path / "Model.PTE"
    assert inputs.companion(program) == tmp_path / "Model.etrecord"  # said when none is there
    (tmp_path / "Model.ETRECORD").write_bytes(b"")
    assert inputs.companion(program) == tmp_path / "Model.ETRECORD"
    (tmp_path / "Model.etrecord").write_bytes(b"")
    assert inputs.companion(program) == tmp_path / "Model.etrecord"  # lower case first
    assert inputs.companion(tmp_path / "m.pt2") is None  # a .pt2 has no companion


def test_options_go_with_the_kinds_that_take_them() -> None:
    pte, pt2 = inputs.known_kind(Path("m.PTE")), inputs.known_kind(Path("m.pt2"))
    record = inputs.known_kind(Path("m.etrecord"))
    given = {"--etrecord": Path("r.etrecord"), "--etdump": None}
    inputs.check_options(pte, given)  # no error
    inputs.check_options(pt2, given)  # a .pt2's latency goes through its lowering's ETRecord
    match = r"^r\.etrecord: --etrecord goes with a \.pt2 or \.pte program$"
    with pytest.raises(EtvizError, match=match):
        inputs.check_options(record, given)
    inputs.check_options(pt2, {"--etdump": Path("run.etdp")})
    inputs.check_options(record, {"--etdump": Path("run.etdp")})  # its stages get latency
    with pytest.raises(EtvizError, match="--debug-buffer goes with the .pte program"):
        inputs.check_options(record, {"--debug-buffer": Path("d.bin")})
    with pytest.raises(EtvizError, match="--memory-svg goes with a .pte program"):
        inputs.check_options(pt2, {"--memory-svg": Path("m.svg")})
    assert inputs.companion(Path("m.etrecord")) == Path("m.pte")  # the program it ran


# ---- etviz-lsp --once on upper-case names --------------------------------------------------


def _once(source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "etviz_lsp", "--once", str(source), "-o", str(output)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_once_opens_a_program_named_in_upper_case(artifacts, tmp_path: Path) -> None:  # noqa: F811
    program = tmp_path / "Model.PTE"
    shutil.copyfile(artifacts.pte, program)
    shutil.copyfile(artifacts.etrecord, tmp_path / "Model.ETRECORD")
    result = _once(program, tmp_path / "m.json")
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["label"] == "Model.PTE"
    graph = data["graphs"][0]
    assert [g["id"] for g in data["graphs"]][0] == "forward"
    assert graph["groupNodeAttributes"][""]["etrecord"] == "Model.ETRECORD"  # linked
    cumsum = {a["key"]: a["value"] for a in graph["nodes"][2]["attrs"]}
    assert cumsum["edge ops"] == "aten_cumsum_default"


def test_once_opens_an_archive_named_in_mixed_case(tmp_path: Path) -> None:
    archive = tmp_path / "Model.Pt2"
    torch.export.save(corpus.nested_convnet(), str(archive))
    result = _once(archive, tmp_path / "a.json")
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["label"] == "Model.Pt2"
    assert {"conv2d", "relu"} <= {n["label"] for n in data["graphs"][0]["nodes"]}
