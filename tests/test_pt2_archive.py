"""The direct ``.pt2`` reader: same graph as the load path, no torch, no pickle, clear errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert
from etviz_lsp.graph.readers import pt2_archive, pt2_text
from tests import corpus
from tests.conftest import PYTHON

Json = dict


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every corpus program written with torch.export.save."""
    folder = tmp_path_factory.mktemp("corpus-pt2")
    paths = {}
    for name, make in corpus.CORPUS.items():
        paths[name] = folder / f"{name}.pt2"
        torch.export.save(make(), str(paths[name]))
    return paths


@pytest.mark.parametrize("name", list(corpus.CORPUS))
def test_direct_reader_gives_the_load_paths_graph(name: str, saved: dict[str, Path]) -> None:
    direct = convert.from_pt2(saved[name]).to_json()
    loaded = convert.from_pt2_loaded(saved[name]).to_json()
    assert direct["graphs"], "the archive holds a program"
    assert [g["id"] for g in direct["graphs"]] == [g["id"] for g in loaded["graphs"]]
    for mine, theirs in zip(direct["graphs"], loaded["graphs"], strict=True):
        assert [n["id"] for n in mine["nodes"]] == [n["id"] for n in theirs["nodes"]]
        for node, expected in zip(mine["nodes"], theirs["nodes"], strict=True):
            assert node == expected, node["id"]
        assert mine == theirs  # group attributes and everything else, too
    assert direct == loaded


def test_the_equivalence_covers_what_it_claims(saved: dict[str, Path]) -> None:
    """The corpus really exercises getitem indices, mutation, cond branches, symbols."""
    mutation = convert.from_pt2(saved["mutation_model"]).to_json()["graphs"][0]
    attrs = {n["id"]: {a["key"]: a["value"] for a in n["attrs"]} for n in mutation["nodes"]}
    assert any(a.get("mutates") == "count" for a in attrs.values())
    getitem_edges = [
        e["sourceNodeOutputId"]
        for n in mutation["nodes"]
        if n["label"] == "getitem"
        for e in n["incomingEdges"]
    ]
    assert {"0", "1"} <= set(getitem_edges)
    cond = convert.from_pt2(saved["cond_model"]).to_json()
    assert len(cond["graphs"]) == 3
    symint = convert.from_pt2(saved["symint_model"]).to_json()["graphs"][0]
    shapes = [a["value"] for n in symint["nodes"] for m in n["outputsMetadata"] for a in m["attrs"]]
    assert any(s.startswith("SymInt: s") for s in shapes)
    quantized = convert.from_pt2(saved["quantized_convnet"]).to_json()["graphs"][0]
    q_attrs = [
        {a["key"]: a["value"] for a in n["attrs"]}
        for n in quantized["nodes"]
        if n["label"] == "quantize_per_tensor"
    ]
    assert q_attrs and all(float(a["scale"]) > 0 and a["dtype"] == "int8" for a in q_attrs)


def run_cli_probe(source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """``etviz-lsp --once`` in a fresh interpreter that then reports what it imported."""
    probe = (
        "import sys\n"
        "from etviz_lsp.cli import main\n"
        f"rc = main(['--once', {str(source)!r}, '-o', {str(output)!r}])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sympy', 'numpy'})\n"
        "print('IMPORTED', ','.join(heavy))\n"
        "sys.exit(rc)\n"
    )
    return subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, timeout=300)


def test_once_on_a_pt2_never_imports_torch(saved: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "graph.json"
    result = run_cli_probe(saved["quantized_convnet"], out)
    assert result.returncode == 0, result.stderr
    assert "IMPORTED \n" in result.stdout, result.stdout
    expected = convert.from_pt2_loaded(saved["quantized_convnet"]).to_json()
    assert json.loads(out.read_text()) == expected


# ---- archives the reader must refuse clearly ----------------------------------------------


def rewrite(
    source: Path,
    target: Path,
    edit: Callable[[str, bytes], bytes | None] = lambda name, data: data,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Copy a zip, passing each entry through ``edit`` (None drops it), adding ``extra``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = edit(info.filename, src.read(info.filename))
            if data is not None:
                dst.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return target


def with_schema_version(major: int) -> Callable[[str, bytes], bytes]:
    def edit(name: str, data: bytes) -> bytes:
        if "/models/" in name:
            program = json.loads(data)
            program["schema_version"] = {"major": major, "minor": 0}
            return json.dumps(program).encode()
        return data

    return edit


def one_line_error(path: Path, allow_pickle: bool = False) -> str:
    with pytest.raises(EtvizError) as caught:
        convert.from_pt2(path, allow_pickle=allow_pickle)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(str(path)), text
    return text


def test_unknown_schema_version_is_refused_without_the_opt_in(
    saved: dict[str, Path], tmp_path: Path
) -> None:
    path = rewrite(saved["symint_model"], tmp_path / "future.pt2", with_schema_version(99))
    text = one_line_error(path)
    assert "schema version 99.0" in text and "(8.x)" in text
    assert "--allow-pickle" in text and "etviz.allowPickle" in text


def test_unknown_schema_version_with_the_opt_in_falls_back_to_torch(
    saved: dict[str, Path], tmp_path: Path
) -> None:
    """With the opt-in, torch.export.load is tried, its own refusal reported in one line."""
    path = rewrite(saved["symint_model"], tmp_path / "future.pt2", with_schema_version(99))
    text = one_line_error(path, allow_pickle=True)
    assert "torch.export.load failed" in text


def test_unknown_archive_version_is_refused(saved: dict[str, Path], tmp_path: Path) -> None:
    path = rewrite(
        saved["symint_model"],
        tmp_path / "v7.pt2",
        lambda name, data: b"7" if name.endswith("/archive_version") else data,
    )
    text = one_line_error(path)
    assert "archive version 7" in text and "--allow-pickle" in text


def test_aotinductor_package_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "compiled.pt2"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("compiled/archive_format", "pt2")
        archive.writestr("compiled/archive_version", "0")
        archive.writestr("compiled/data/aotinductor/model/model.wrapper.so", b"\x7fELF")
        archive.writestr("compiled/data/aotinductor/model/model.wrapper.cpp", "// code")
    text = one_line_error(path, allow_pickle=True)
    assert "AOTInductor package" in text


def test_zip_without_models_is_not_a_pt2(tmp_path: Path) -> None:
    path = tmp_path / "other.pt2"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("other/readme.txt", "hello")
    assert "no models/*.json" in one_line_error(path, allow_pickle=True)


def test_truncated_archive_is_reported(saved: dict[str, Path], tmp_path: Path) -> None:
    data = saved["nested_convnet"].read_bytes()
    path = tmp_path / "cut.pt2"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or damaged" in one_line_error(path, allow_pickle=True)


def test_damaged_program_json_is_reported(saved: dict[str, Path], tmp_path: Path) -> None:
    path = rewrite(
        saved["symint_model"],
        tmp_path / "bad.pt2",
        lambda name, data: data[: len(data) // 2] if "/models/" in name else data,
    )
    assert "is not valid JSON" in one_line_error(path, allow_pickle=True)


def test_cli_error_is_one_line_and_keeps_the_last_good_graph(
    saved: dict[str, Path], tmp_path: Path
) -> None:
    data = saved["nested_convnet"].read_bytes()
    source = tmp_path / "cut.pt2"
    source.write_bytes(data[: len(data) // 3])
    out = tmp_path / "graph.json"
    out.write_text('{"label": "last good graph"}')
    result = run_cli_probe(source, out)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(source) in lines[0] and "truncated" in lines[0], result.stderr
    assert out.read_text() == '{"label": "last good graph"}'


# ---- a pickle payload in the weights -------------------------------------------------------


class _Payload:
    """Unpickling this creates ``marker`` (what a malicious weight file could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (open, (str(self.marker), "w"))


def booby_trapped(source: Path, target: Path, marker: Path) -> Path:
    """A real archive whose ``lin.bias`` weight is a pickle that creates ``marker``."""
    config_name = next(
        n for n in zipfile.ZipFile(source).namelist() if n.endswith("model_weights_config.json")
    )
    config = json.loads(zipfile.ZipFile(source).read(config_name))
    entry = config["config"]["lin.bias"]
    entry["use_pickle"] = True
    weight_name = config_name.rsplit("/", 1)[0] + "/" + entry["path_name"]
    payload = pickle.dumps(_Payload(marker), protocol=2)

    def edit(name: str, data: bytes) -> bytes:
        if name == config_name:
            return json.dumps(config).encode()
        if name == weight_name:
            return payload
        return data

    return rewrite(source, target, edit)


def test_pickled_weight_is_never_unpickled_on_the_direct_path(
    saved: dict[str, Path], tmp_path: Path
) -> None:
    marker = tmp_path / "payload-ran"
    source = booby_trapped(saved["mutation_model"], tmp_path / "trap.pt2", marker)
    result = run_cli_probe(source, tmp_path / "trap.json")
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), "the direct reader ran a pickle payload"
    graph = json.loads((tmp_path / "trap.json").read_text())["graphs"][0]
    assert graph["groupNodeAttributes"]["lin (Linear)"]["parameters"] == "42"  # 6*6 + 6


def test_the_payload_is_real_the_load_path_runs_it(saved: dict[str, Path], tmp_path: Path) -> None:
    """Control: torch.export.load on the same file does unpickle (so the test above can fail)."""
    marker = tmp_path / "payload-ran"
    source = booby_trapped(saved["mutation_model"], tmp_path / "trap.pt2", marker)
    probe = (
        "from pathlib import Path\n"
        "from etviz_lsp.graph import convert\n"
        "try:\n"
        f"    convert.from_pt2_loaded(Path({str(source)!r}))\n"
        "except Exception:\n"
        "    pass\n"
    )
    subprocess.run([PYTHON, "-c", probe], capture_output=True, timeout=300, check=True)
    assert marker.exists()


# ---- tables copied from torch's schema stay in step with torch -----------------------------


def test_enum_tables_match_torchs_serializer() -> None:
    from torch._export.serde import serialize

    def short(value: object) -> str:
        return str(value).removeprefix("torch.")

    assert {
        int(k): short(v) for k, v in serialize._SERIALIZE_TO_TORCH_DTYPE.items()
    } == pt2_text.DTYPES
    assert {
        int(k): short(v) for k, v in serialize._SERIALIZE_TO_TORCH_LAYOUT.items()
    } == pt2_text.LAYOUTS
    assert {
        int(k): short(v) for k, v in serialize._SERIALIZE_TO_TORCH_MEMORY_FORMAT.items()
    } == pt2_text.MEMORY_FORMATS
    from torch._export.serde.schema import SCHEMA_VERSION

    assert SCHEMA_VERSION[0] == pt2_archive.SCHEMA_MAJOR


@pytest.mark.parametrize(
    ("arg", "value"),
    [
        ({"as_int": 3}, 3),
        ({"as_float": 0.1}, 0.1),
        ({"as_float": "Infinity"}, float("inf")),
        ({"as_bool": True}, True),
        ({"as_ints": [1, 1]}, [1, 1]),
        ({"as_floats": [0.5, 2.0]}, [0.5, 2.0]),
        ({"as_int_lists": [[1, 2], [3]]}, [(1, 2), (3,)]),
        ({"as_scalar_type": 2}, torch.int8),
        ({"as_memory_format": 2}, torch.channels_last),
        ({"as_layout": 7}, torch.strided),
        ({"as_device": {"type": "cpu", "index": None}}, torch.device("cpu")),
        ({"as_device": {"type": "cuda", "index": 1}}, torch.device("cuda", 1)),
        ({"as_string": "tanh"}, "tanh"),
        ({"as_strings": ["a", "b"]}, ["a", "b"]),
        ({"as_sym_ints": [{"as_int": 4}, {"as_int": 5}]}, [4, 5]),
        ({"as_tensors": []}, []),
        ({"as_none": True}, None),
    ],
)
def test_literals_are_spelled_as_the_fx_reader_spells_them(arg: Json, value: object) -> None:
    from etviz_lsp.graph.readers import fx_reader

    assert pt2_text.format_argument(arg) == fx_reader.format_literal(value)
