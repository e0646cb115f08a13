"""``etviz-lsp --once FILE.pt2``: real .pt2 files, a real subprocess, what a user sees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from tests import corpus
from tests.conftest import PYTHON


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "etviz_lsp", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="module")
def quantized_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "qconvnet.pt2"
    torch.export.save(corpus.quantized_convnet(), str(path))
    return path


def test_quantized_pt2_converts_with_explicit_output(quantized_pt2: Path, tmp_path: Path) -> None:
    out = tmp_path / "graph.json"
    result = run_cli("--once", str(quantized_pt2), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout and "operator calls" in result.stdout
    collection = json.loads(out.read_text())
    assert collection["label"] == "qconvnet.pt2"
    labels = {n["label"] for n in collection["graphs"][0]["nodes"]}
    assert {"quantize_per_tensor", "dequantize_per_tensor", "conv2d"} <= labels
    assert not list(tmp_path.glob(".*.tmp")), "no temp file left behind"


def test_default_output_never_clobbers_a_user_file(quantized_pt2: Path, tmp_path: Path) -> None:
    source = tmp_path / quantized_pt2.name
    source.write_bytes(quantized_pt2.read_bytes())
    users_file = tmp_path / "qconvnet.pt2.json"
    users_file.write_text("my notes")
    result = run_cli("--once", str(source))
    assert result.returncode == 0, result.stderr
    written = tmp_path / ".etviz" / "qconvnet.pt2.json"
    assert f"wrote {written}" in result.stdout
    assert json.loads(written.read_text())["graphs"]
    assert users_file.read_text() == "my notes"


@pytest.mark.parametrize(
    ("make_input", "cause"),
    [
        (lambda d: d / "missing.pt2", "no such file"),
        (lambda d: _write(d / "random.pt2", b"\x00garbage" * 100), "not a .pt2 archive"),
        (lambda d: _mkdir(d / "folder.pt2"), "is a directory"),
    ],
    ids=["missing", "random-bytes", "directory"],
)
def test_bad_input_is_one_line_and_leaves_output_untouched(
    tmp_path: Path, make_input, cause: str
) -> None:
    source = make_input(tmp_path)
    out = tmp_path / "previous.json"
    out.write_text('{"label": "last good graph"}')
    result = run_cli("--once", str(source), "-o", str(out))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(source) in lines[0] and cause in lines[0]
    assert out.read_text() == '{"label": "last good graph"}'


def test_output_folder_missing_is_a_clear_error(quantized_pt2: Path, tmp_path: Path) -> None:
    out = tmp_path / "no-such-folder" / "graph.json"
    result = run_cli("--once", str(quantized_pt2), "-o", str(out))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith("does not exist")
    assert str(out) in result.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path
