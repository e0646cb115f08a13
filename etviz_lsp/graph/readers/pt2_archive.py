"""Read a ``.pt2`` written by ``torch.export.save`` straight from its zip: no torch, no pickle.

``torch.export.load`` unpickles sample inputs (and any weight saved with pickle), then
rebuilds real weights and an FX graph: about 15 s for a 20k-node program. A graph view
needs none of that. The archive also holds the program as JSON (``models/<name>.json``,
torch's serialization schema, ``torch/_export/serde/schema.py``) and the weights' shapes
and dtypes as JSON (``data/weights/<name>_weights_config.json``). This module reads those
two files into the same :class:`ir.ProgramRecord` that ``fx_reader`` makes from the
loaded program, mirroring what torch's deserializer (``serialize.py``,
``GraphModuleDeserializer``) would build: the same node names, the ``getitem`` nodes it
adds for multi-output ops, the same argument split into positional and keyword, the same
metadata. The equivalence test (``tests/test_pt2_archive.py``) holds both paths to that.

Only JSON is parsed; weight payloads are never opened. An archive this reader does not
know (another archive version or schema major version, an old layout) raises
:class:`UnsupportedArchive`: the caller may then fall back to ``torch.export.load`` if the
user opted in to unpickling for this run.

This module is the entry; the work is in three floors, each importing only those below:
``pt2_zip`` (the zip, members within the limits budget, versions), ``pt2_text`` (text of
targets, tensors, literals) and ``pt2_program`` (the program and its graphs).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import msgspec

from etviz_lsp.graph.binary import limits
from etviz_lsp.graph.core import ir
from etviz_lsp.graph.readers import pt2_program, pt2_schema, pt2_text, pt2_zip
from etviz_lsp.graph.readers.pt2_zip import ARCHIVE_VERSIONS, SCHEMA_MAJOR, UnsupportedArchive

__all__ = ["ARCHIVE_VERSIONS", "SCHEMA_MAJOR", "UnsupportedArchive", "read_member", "read_records"]


def read_records(path: Path, bounds: limits.Limits | None = None) -> list[ir.ProgramRecord]:
    """Every program in the ``.pt2`` at ``path`` (``model`` first), named after the file.

    What it may cost is bounded by ``bounds`` (default: ``limits.current()``)."""
    budget = (bounds or limits.current()).budget(str(path))
    with pt2_zip.open_zip(path) as archive:
        root, names = pt2_zip.layout(path, archive, budget)
        records = []
        for model in pt2_zip.model_names(names, root):
            weights_file = root + pt2_zip.WEIGHTS_CONFIG.format(model)
            weights = (
                pt2_zip.read_weights(path, archive, weights_file, budget)
                if weights_file in names
                else {}
            )
            name = path.stem if model == "model" else f"{path.stem}.{model}"
            member = f"{root}{pt2_zip.MODELS_DIR}{model}.json"
            records.append(read_member(path, archive, member, name, weights, budget=budget))
        return records


def read_member(
    path: Path,
    archive: zipfile.ZipFile,
    member: str,
    name: str,
    weights: dict[str, pt2_schema.WeightEntry] | None = None,
    schema_major: int = SCHEMA_MAJOR,
    budget: limits.Budget | None = None,
) -> ir.ProgramRecord:
    """One serialized program (``member`` of ``archive``) -> a record named ``name``.

    Also what the ETRecord reader uses: ExecuTorch stores its programs in this JSON too,
    written by its own copy of the serializer (``schema_major`` 5). Its cost is bounded by
    ``budget`` (default: a fresh one of ``limits.current()`` for the file).
    """
    budget = budget or limits.current().budget(str(path))
    program = pt2_zip.read_program(path, archive, member, budget, schema_major)
    try:
        return pt2_program.ProgramReader(program, weights or {}).read(name)
    except pt2_text.UnknownConstruct as exc:
        raise UnsupportedArchive(str(path), str(exc)) from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError,
            RecursionError, msgspec.ValidationError) as exc:
        cause = pt2_zip.first_line(f"{type(exc).__name__}: {exc}")
        raise UnsupportedArchive(str(path), f"unexpected serialized program ({cause})") from None
