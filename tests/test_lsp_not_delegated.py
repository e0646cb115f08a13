"""End to end: why an op stayed on the CPU, in the editor, through the real server over stdio.

The script of ``test_not_delegated.py`` (XNNPACK and Vulkan lowerings of one net) runs in
the real warm worker: each op a partitioner left on the CPU becomes an Information
diagnostic on the line that made it, in the partitioner's words (``test_not_delegated.py``
checks those words against the partitioners themselves). ``etviz.notDelegatedDiagnostics``
turns them off and on live; a run replaces them (an op the backends now take loses its).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types

from tests.lsp_session import Session, lsp_session

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SCRIPT = Path(__file__).parent / "scripts" / "why_not_delegated.py"
CUMSUM = "y = torch.cumsum(y, dim=1)  # the cumsum"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Session]:
    root = tmp_path_factory.mktemp("lsp-not-delegated")
    async with lsp_session(root, trusted=True, timeout=900) as session:
        yield session


def line_of(text: str, needle: str) -> int:
    """0-based, as LSP counts."""
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def cpu_diagnostics(session: Session, script: Path) -> list[types.Diagnostic]:
    found = session.client.diagnostics.get(script.as_uri(), [])
    return [d for d in found if d.code == "not-delegated"]


def by_line(diagnostics: list[types.Diagnostic]) -> dict[int, set[str]]:
    lines: dict[int, set[str]] = {}
    for diagnostic in diagnostics:
        lines.setdefault(diagnostic.range.start.line, set()).add(diagnostic.message)
    return lines


async def test_each_cpu_op_is_an_information_diagnostic_on_its_line_replaced_every_run(
    session: Session,
) -> None:
    text = SCRIPT.read_text()
    script = session.root / "workspace" / "why.py"
    script.write_text(text)
    await session.visualize(script)
    await session.wait_for(lambda: cpu_diagnostics(session, script), 60, "CPU op diagnostics")
    found = cpu_diagnostics(session, script)
    assert {d.severity for d in found} == {types.DiagnosticSeverity.Information}
    assert {d.source for d in found} == {"etviz"}
    lines = by_line(found)
    assert set(lines) == {line_of(text, "# the mean"), line_of(text, "# the cumsum")}
    xnnpack = "XnnpackPartitioner: no partitioner config for cumsum.default"
    vulkan = "VulkanPartitioner: no operator implementation"
    assert lines[line_of(text, "# the cumsum")] == {
        f"cumsum stays on the CPU: {xnnpack}",  # the XNNPACK lowering
        f"cumsum stays on the CPU: {vulkan}",  # the Vulkan lowering
        f"cumsum stays on the CPU: {xnnpack}; {vulkan}",  # the one with both partitioners
    }
    vulkan_mean, xnnpack_mean, both_mean = sorted(lines[line_of(text, "# the mean")])
    assert vulkan_mean.startswith("mean stays on the CPU: VulkanPartitioner: ")
    assert xnnpack_mean == (
        "mean stays on the CPU: XnnpackPartitioner: mean.dim only supports keepdim=True"
    )
    assert both_mean == f"{xnnpack_mean}; {vulkan_mean.removeprefix('mean stays on the CPU: ')}"
    # The range starts at the code, not the indentation.
    cumsum = next(d for d in found if d.message.startswith("cumsum"))
    assert cumsum.range.start.character == text.splitlines()[cumsum.range.start.line].index("y =")

    # Off and on again, live: no run needed.
    session.configure(notDelegatedDiagnostics=False)
    await session.wait_for(lambda: not cpu_diagnostics(session, script), 30, "diagnostics off")
    session.configure(notDelegatedDiagnostics=True)
    await session.wait_for(lambda: cpu_diagnostics(session, script), 30, "diagnostics on again")

    # A run replaces them: a relu both backends take leaves only the mean on the CPU.
    before = len(session.graph_ready)
    session.save(script, text.replace(CUMSUM, "y = torch.relu(y)  # the cumsum"))
    await session.next_graph(script, before, stale=False, seconds=900)
    await session.wait_for(
        lambda: set(by_line(cpu_diagnostics(session, script))) == {line_of(text, "# the mean")},
        60, "only the mean's diagnostics",
    )  # fmt: skip
