"""Build (once) and cache the benchmark's ``.pt2`` files under ``build/bench-cache/``.

Exporting and saving the 20k-node program takes about a minute; the cache keeps later
runs quick. A file is written to a temp name and renamed, so a cancelled build never
leaves a half-written archive in the cache.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE = REPO_ROOT / "build" / "bench-cache"

# Decoder layers -> about 1k, 6.5k and 20k graph nodes (59 nodes per layer + 15).
SIZES = {"1k": 17, "6.5k": 110, "20k": 339}


def cached_pt2(layers: int) -> Path:
    path = CACHE / f"llama-{layers}.pt2"
    if path.exists():
        return path
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import llama

    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"building {path.name} (export + save, once) ...", file=sys.stderr, flush=True)
    tmp = path.with_suffix(".tmp.pt2")
    torch.export.save(llama.export(layers), str(tmp))
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    wanted = [int(arg) for arg in sys.argv[1:]] or list(SIZES.values())
    for layers in wanted:
        print(cached_pt2(layers))
