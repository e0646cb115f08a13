"""The workspace files each visualized run imported (its model, its helpers), so saving any
of them re-runs the visualized flow.

The worker reports every non-library ``.py`` file a run imported; only those inside a
workspace root are kept (a file elsewhere is not the user's to edit here), at most
``MAX_FILES`` per run. Each kept file is watched on its own (watch.py watches its folder,
non-recursively): never a watch on a whole tree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from etviz_lsp.lsp.watch import FileWatcher

log = logging.getLogger(__name__)
MAX_FILES = 200


class ImportedFiles:
    def __init__(self, watcher: FileWatcher, visualized: Callable[[Path], bool]) -> None:
        self._watcher = watcher
        self._visualized = visualized  # those stay watched whatever imports them
        self._by_source: dict[Path, frozenset[Path]] = {}
        self._watching = False

    def update(self, source: Path, imported: Iterable[Path], roots: Iterable[Path]) -> None:
        """A good run of ``source`` imported ``imported``: what it depends on from now on."""
        kept = _in_roots(imported, roots, exclude=source)
        old = self._by_source.get(source, frozenset())
        self._by_source[source] = kept
        if self._watching:
            for path in kept - old:
                self._watcher.watch(path)
            self._unwatch_unused(old - kept)

    def sources_using(self, path: Path) -> list[Path]:
        """The visualized files whose last good run imported ``path``."""
        return [source for source, files in self._by_source.items() if path in files]

    def files_of(self, source: Path) -> frozenset[Path]:
        return self._by_source.get(source, frozenset())

    def watch(self, on: bool) -> None:
        """Auto-refresh turned on or off: watch every imported file, or none."""
        if on == self._watching:
            return
        self._watching = on
        for path in self._all():
            if on:
                self._watcher.watch(path)
            else:
                self._watcher.unwatch(path)

    def _all(self) -> set[Path]:
        return set().union(*self._by_source.values()) if self._by_source else set()

    def _unwatch_unused(self, dropped: Iterable[Path]) -> None:
        still = self._all()
        for path in dropped:
            if path not in still and not self._visualized(path):
                self._watcher.unwatch(path)


def _in_roots(imported: Iterable[Path], roots: Iterable[Path], *, exclude: Path) -> frozenset[Path]:
    folders = [root.resolve() for root in roots]
    kept: list[Path] = []
    for raw in imported:
        path = Path(raw).resolve()
        if path != exclude and any(path.is_relative_to(folder) for folder in folders):
            kept.append(path)
    if len(kept) > MAX_FILES:
        log.warning("the run imported %d workspace files: watching the first %d", len(kept),
                    MAX_FILES)
        kept = kept[:MAX_FILES]
    return frozenset(kept)
