// Pure decisions of navigation (issue 11), kept apart from the vscode API so they are
// unit tested: how to select a node in Model Explorer, what the status bar says, and which
// node selections the page announces are our own echo rather than the user's click.

import type { NodesAtLine } from './protocol';

export type SelectPlan =
  // post `model-explorer-select-node-by-node-id` into the page: Model Explorer selects the
  // node in the graph it shows and expands the layers above it (setNodeToReveal)
  | { kind: 'post'; nodeId: string }
  // the node is in another graph of the collection than the one on screen: load the
  // server's URL, whose uiState selects that graph and node and expands its layers
  | { kind: 'navigate'; url: string; nodeId: string }
  // another graph, and no URL to switch to it
  | { kind: 'none'; why: string };

/** `shownGraph`: the graph the page opened on (from its URL's uiState), if known. */
export function planSelection(answer: NodesAtLine, shownGraph: string | undefined): SelectPlan {
  const nodeId = answer.nodeIds[0];
  if (nodeId === undefined) {
    return { kind: 'none', why: 'no node' };
  }
  if (shownGraph === undefined || shownGraph === answer.graphId) {
    return { kind: 'post', nodeId };
  }
  if (answer.url !== undefined) {
    return { kind: 'navigate', url: answer.url, nodeId };
  }
  return { kind: 'none', why: `${nodeId} is in graph ${answer.graphId}, not in ${shownGraph}` };
}

/** The status bar note after selecting the nodes a (0-based) line made. */
export function selectionNote(answer: NodesAtLine, line: number | undefined): string {
  const count = answer.nodeIds.length;
  const where = line === undefined ? 'this line' : `line ${line + 1}`;
  if (count === 0) {
    return `etviz: ${where} made no op in the graph`;
  }
  const first = answer.nodeIds[0];
  if (count === 1) {
    return `etviz: selected ${first} in ${answer.graphId}`;
  }
  return `etviz: ${where} made ${count} ops in ${answer.graphId}; selected the first, ${first}`;
}

/** The status bar note for a selected node that has no line to open. */
export function noSourceNote(nodeId: string, reason: string): string {
  return `etviz: ${nodeId}: ${reason}`;
}

/**
 * Model Explorer announces every selection, including the ones we asked for: an announced
 * node we selected ourselves within `windowMs` is that echo, and must not move the editor
 * (it would pull the cursor away from the line the user is on).
 */
export class EchoFilter {
  private expected: { nodeId: string; until: number } | undefined;

  // Generous: on a slow machine Model Explorer took 13 s to expand the layers and announce.
  constructor(private readonly windowMs = 15000) {}

  /** We are about to select `nodeId` in the page. */
  expect(nodeId: string, now: number, windowMs = this.windowMs): void {
    this.expected = { nodeId, until: now + windowMs };
  }

  /** True when an announced selection is the echo of ours (consumed: the next one is the user's). */
  isEcho(nodeId: string, now: number): boolean {
    const expected = this.expected;
    if (expected === undefined) {
      return false;
    }
    this.expected = undefined;
    return expected.nodeId === nodeId && now <= expected.until;
  }
}
