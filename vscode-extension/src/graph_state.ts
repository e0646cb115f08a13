// What the panel and the status bar should do with each graph event. Pure decisions, so
// the rules (which file is shown, duplicates, stale graphs after a failure) are testable.

import { type GraphEvent, totalNodes } from './protocol';

/** Same file, however each side spelled its URI (percent-encoding, trailing slashes). */
export function sameSource(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) {
    return false;
  }
  return canonicalUri(a) === canonicalUri(b);
}

export function canonicalUri(uri: string): string {
  const match = /^([a-zA-Z][\w+.-]*):(.*)$/.exec(uri);
  if (match === null) {
    return uri;
  }
  let rest = match[2];
  try {
    rest = decodeURIComponent(rest);
  } catch {
    // keep the raw text when it is not valid percent-encoding
  }
  // Windows drive letters: file:///C:/x and file:///c%3A/x are one file.
  rest = rest.replace(/^\/\/\/([A-Za-z]):/, (_m, drive: string) => `///${drive.toLowerCase()}:`);
  return `${match[1].toLowerCase()}:${rest}`;
}

export type PanelAction =
  // navigate: point the iframe at `url`. False when it already shows that URL: the server
  // rewrote the graph file and reloaded every open Model Explorer page itself
  // (refresh_page), so a second load would only double the wait.
  | { kind: 'show'; url: string; banner: string; navigate: boolean }
  | { kind: 'banner'; banner: string } // keep the graph, update the banner only
  | { kind: 'ignore' }; // another file, or the same event twice

/**
 * `shownSource`: the file the panel shows (undefined: nothing yet). `last`: the last event
 * applied to the panel. `explicit`: the user asked for this file (visualize command), so it
 * replaces whatever the panel showed.
 */
export function panelAction(
  shownSource: string | undefined,
  last: GraphEvent | undefined,
  event: GraphEvent,
  explicit: boolean,
): PanelAction {
  const switching = !sameSource(shownSource, event.source);
  if (switching && !explicit) {
    return { kind: 'ignore' };
  }
  if (last !== undefined && isSameRun(last, event)) {
    return { kind: 'ignore' };
  }
  const banner = bannerText(event);
  if (event.url === '') {
    return event.error === undefined ? { kind: 'ignore' } : { kind: 'banner', banner };
  }
  // A failed rebuild of the file on screen: the graph there is already the last good one,
  // unless the run's partial stages replaced it meanwhile (then back to the good one).
  if (event.error !== undefined && event.stale && !switching && last?.inProgress !== true) {
    return { kind: 'banner', banner };
  }
  const navigate = switching || last === undefined || last.url !== event.url;
  return { kind: 'show', url: event.url, banner, navigate };
}

/** The visualize result and the graphReady of one run carry the same facts: apply once. */
export function isSameRun(a: GraphEvent, b: GraphEvent): boolean {
  return (
    sameSource(a.source, b.source) &&
    a.url === b.url &&
    a.elapsedMs === b.elapsedMs &&
    a.stale === b.stale &&
    a.inProgress === b.inProgress &&
    a.error === b.error &&
    a.graphs.length === b.graphs.length &&
    a.graphs.every((g, i) => g.id === b.graphs[i].id && g.nodeCount === b.graphs[i].nodeCount)
  );
}

export function bannerText(event: GraphEvent): string {
  if (event.error === undefined) {
    return '';
  }
  const first = event.error.split('\n')[0];
  return event.stale ? `${first}\n(showing the last graph that built)` : first;
}

// ---- status bar ----

export type ServerPhase = 'starting' | 'ready' | 'stopped' | 'no-interpreter' | 'failed';

export interface StatusModel {
  phase: ServerPhase;
  building: boolean;
  graph?: GraphEvent;
  problem?: string; // why the server is not running
}

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;
}

function fileName(uri: string): string {
  const decoded = canonicalUri(uri);
  return decoded.slice(decoded.lastIndexOf('/') + 1);
}

export function plural(count: number, word: string): string {
  return `${count.toLocaleString('en-US')} ${word}${count === 1 ? '' : 's'}`;
}

export function statusView(model: StatusModel): StatusView {
  switch (model.phase) {
    case 'starting':
      return { text: '$(sync~spin) etviz', tooltip: 'etviz: starting the language server', error: false };
    case 'stopped':
      return { text: '$(debug-stop) etviz', tooltip: 'etviz: server stopped. Click to show the graph panel.', error: false };
    case 'no-interpreter':
    case 'failed':
      return { text: '$(error) etviz', tooltip: `etviz: ${model.problem ?? 'the server is not running'}`, error: true };
    case 'ready':
      break;
  }
  if (model.building) {
    return { text: '$(sync~spin) etviz: building graph', tooltip: 'etviz: running the export script', error: false };
  }
  const graph = model.graph;
  if (graph === undefined) {
    return { text: '$(type-hierarchy) etviz', tooltip: 'etviz: ready. Click to show the graph panel.', error: false };
  }
  const lines = graph.graphs.map((g) => `${g.id}: ${plural(g.nodeCount, 'node')}`);
  if (graph.error !== undefined) {
    const note = graph.stale ? ' (showing the last good graph)' : '';
    return {
      text: '$(error) etviz: error',
      tooltip: `${fileName(graph.source)}: ${graph.error.split('\n')[0]}${note}`,
      error: true,
    };
  }
  const seconds = (graph.elapsedMs / 1000).toFixed(1);
  if (graph.inProgress) {
    return {
      text: `$(sync~spin) etviz: ${plural(graph.graphs.length, 'stage')} so far`,
      tooltip: [`${fileName(graph.source)}: still running, ${seconds} s so far`, ...lines].join('\n'),
      error: false,
    };
  }
  return {
    text: `$(type-hierarchy) ${plural(totalNodes(graph.graphs), 'node')}`,
    tooltip: [`${fileName(graph.source)}, built in ${seconds} s`, ...lines].join('\n'),
    error: false,
  };
}
