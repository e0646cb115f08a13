"""``etviz.server.compare [fileUri]``: a visualized file's stages for the compare view
(issue 18): each stage graph with the URL showing it, and the stage correspondence the
worker wrote beside the graph JSON (the file its manifest lists). The server only reads
that file: the correspondence is computed where the programs lived (the worker child)."""

from __future__ import annotations

import json
from typing import Any

from etviz_lsp import graph_files
from etviz_lsp.errors import EtvizError
from etviz_lsp.explorer.urls import ui_state
from etviz_lsp.lsp.commands import COMPARE, RequestFailed
from etviz_lsp.lsp.explorer_server import ExplorerServer
from etviz_lsp.lsp.paths import path_of

MAX_BYTES = 64 << 20  # a side file this big is no correspondence we wrote for a graph shown


def compare_answer(explorer: ExplorerServer, args: tuple[Any, ...]) -> dict[str, Any]:
    source = path_of(args[0]) if len(args) == 1 and isinstance(args[0], str) else None
    if source is None:
        raise RequestFailed(f"{COMPARE}: expected [fileUri], got {list(args)}")
    graph_json = explorer.graph_file_for(source)
    try:
        manifest = graph_files.read(graph_json, navigation=False)
    except EtvizError as exc:
        raise RequestFailed(str(exc)) from None
    side = manifest.file(graph_files.CORRESPONDENCE) if manifest is not None else None
    if side is None:
        raise RequestFailed(f"{source.name}: no stages to compare yet; visualize the script first")
    try:
        if side.stat().st_size > MAX_BYTES:
            raise RequestFailed(f"{side}: stage correspondence over {MAX_BYTES >> 20} MiB")
        doc = json.loads(side.read_bytes())
    except FileNotFoundError:
        raise RequestFailed(
            f"{source.name}: no stages to compare yet; visualize the script first"
        ) from None
    except (OSError, ValueError) as exc:
        raise RequestFailed(f"{side}: unreadable stage correspondence: {exc}") from None
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, list) or len(stages) < 2:
        raise RequestFailed(f"{source.name}: one stage only; nothing to compare")
    label = str(doc.get("label", ""))
    answer = []
    for stage in stages:
        graph_id = str(stage.get("graphId", ""))
        url = explorer.known_url_for(graph_json, ui_state(graph_id, collection_label=label))
        answer.append({"graphId": graph_id, "stage": str(stage.get("stage", "")), "url": url})
    return {"source": source.as_uri(), "stages": answer, "correspondence": doc}
