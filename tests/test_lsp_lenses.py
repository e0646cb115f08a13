"""Code lens detection: export and lowering calls found by ast, however they were imported."""

from __future__ import annotations

import textwrap

from etviz_lsp.lsp.lenses import find_export_calls


def lines(source: str) -> list[tuple[int, str]]:
    return [(c.line, c.name) for c in find_export_calls(textwrap.dedent(source))]


def test_the_three_calls_under_their_usual_imports() -> None:
    source = """\
        import torch
        from executorch.exir import to_edge, to_edge_transform_and_lower

        ep = torch.export.export(model, args)
        edge = to_edge(ep)
        lowered = to_edge_transform_and_lower(
            ep, partitioner=[p]
        )
        """
    assert lines(source) == [
        (3, "torch.export.export"),
        (4, "executorch.exir.to_edge"),
        (5, "executorch.exir.to_edge_transform_and_lower"),
    ]


def test_aliases_and_from_imports_resolve() -> None:
    source = """\
        from torch.export import export
        from torch import export as tex
        import executorch.exir as exir

        def main():
            a = export(m, x)
            b = tex.export(m, x)
            c = exir.to_edge(a)
        """
    assert lines(source) == [
        (5, "torch.export.export"),
        (6, "torch.export.export"),
        (7, "executorch.exir.to_edge"),
    ]


def test_other_calls_named_export_are_not_lenses() -> None:
    source = """\
        import json
        from mylib import export
        export(data)
        json.dump(x)
        torch.export.save(ep, "m.pt2")
        torch.export.load("m.pt2")
        """
    assert lines(source) == []


def test_a_file_mid_edit_that_does_not_parse_gives_no_lens() -> None:
    assert lines("import torch\nep = torch.export.export(m, (x,)\n") == []


def test_column_points_at_the_call() -> None:
    [call] = find_export_calls("import torch\nif True:\n    ep = torch.export.export(m, x)\n")
    assert (call.line, call.column) == (2, 9)
