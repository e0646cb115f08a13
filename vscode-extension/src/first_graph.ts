// Which graph of a script's collection the panel opens on. Left alone, Model Explorer
// opens the graph with the most nodes (measured in 0.1.34), which after lowering is the
// float program rather than the lowered one the user works towards. The collection lists
// the graphs in the order the script made them, so "last" is the last stage made; the
// page honours `uiState.paneStates[0].selectedGraphId` in its `data` parameter. Pure.

import type { GraphEvent } from './protocol';

export type FirstGraph = 'last' | 'first';

/** `url` with the chosen graph selected, unless the URL already carries a view state
 * (a reveal in another graph, a selection): that state wins. */
export function withFirstGraph(url: string, graphIds: readonly string[], which: FirstGraph): string {
  const shown = topLevel(graphIds);
  const graphId = which === 'first' ? shown[0] : shown[shown.length - 1];
  if (graphId === undefined) {
    return url;
  }
  let parsed: URL;
  let data: unknown;
  try {
    parsed = new URL(url);
    data = JSON.parse(parsed.searchParams.get('data') ?? 'null');
  } catch {
    return url; // not a Model Explorer URL we can read: leave it as the server gave it
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data) || 'uiState' in data) {
    return url;
  }
  // The whole pane shape (as the server's ui_state writes it): with fields missing, the
  // page selects the graph but draws nothing (seen in code-server).
  const pane = {
    deepestExpandedGroupNodeIds: [],
    selectedNodeId: '',
    selectedGraphId: graphId,
    selectedCollectionLabel: '',
    widthFraction: 1,
    selected: true,
  };
  const uiState = { paneStates: [pane] };
  parsed.searchParams.set('data', JSON.stringify({ ...data, uiState }));
  return parsed.toString();
}

/** The graphs a collection is about, without the graphs nested in them: a nested graph's id
 * is its parent's plus `/name` (a cond branch, an XNNPACK delegate inside a .pte method),
 * and opening on a delegate's kernels instead of the method that calls it would mislead. */
export function topLevel(graphIds: readonly string[]): string[] {
  const all = new Set(graphIds);
  return graphIds.filter((id) => {
    for (let at = id.indexOf('/'); at > 0; at = id.indexOf('/', at + 1)) {
      if (all.has(id.slice(0, at))) {
        return false;
      }
    }
    return true;
  });
}

/** The event as the panel and status bar should see it (same URL for the same graphs, so
 * an unchanged rebuild still reloads in place). */
export function eventWithFirstGraph(event: GraphEvent, which: FirstGraph): GraphEvent {
  if (event.url === '') {
    return event;
  }
  return { ...event, url: withFirstGraph(event.url, event.graphs.map((graph) => graph.id), which) };
}
