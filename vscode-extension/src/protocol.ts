// The language server's side of the conversation (agreed in HELPERS.md), as types plus
// checks: payloads come from another process, so they are validated, not trusted.

/** Server command ids. vscode-languageclient registers these itself: never register them here. */
export const SERVER_COMMANDS = {
  visualize: 'etviz.server.visualize',
  refresh: 'etviz.server.refresh',
  stop: 'etviz.server.stop',
  // Issue 11 (navigation), answered by servers that list them in executeCommandProvider.
  nodeAt: 'etviz.server.nodeAt',
  sourceOf: 'etviz.server.sourceOf',
} as const;

/** `etviz.server.nodeAt` [uri, line]: the op nodes a source line created. */
export interface NodesAtLine {
  graphId: string;
  nodeIds: string[];
}

/** `etviz.server.sourceOf` [graphId, nodeId]: the user's line behind a node (0-based, as LSP). */
export interface SourceLine {
  uri: string;
  line: number;
}

export const GRAPH_READY = 'etviz/graphReady';

export interface GraphInfo {
  id: string;
  nodeCount: number;
}

/** What `etviz.server.visualize` answers and what `etviz/graphReady` carries. */
export interface GraphEvent {
  source: string; // file URI of the script or .pt2
  url: string; // Model Explorer page showing the graph
  graphs: GraphInfo[];
  elapsedMs: number;
  stale: boolean; // true: the newest run failed and `url` still shows the last good graph
  error?: string;
}

export interface InitializationOptions {
  trusted: boolean;
  pythonPath: string;
  autoRefresh: boolean;
  timeout: number;
  port?: number;
  clientPid: number;
}

export interface EtvizSettings {
  autoRefresh: boolean;
  timeout: number;
  port: number;
}

export function buildInitializationOptions(
  settings: EtvizSettings,
  pythonPath: string,
  trusted: boolean,
  clientPid: number,
): InitializationOptions {
  const options: InitializationOptions = {
    trusted,
    pythonPath,
    autoRefresh: settings.autoRefresh,
    timeout: settings.timeout,
    clientPid,
  };
  // 0 means "any free port": let the server choose rather than sending a port it must bind.
  if (settings.port > 0) {
    options.port = settings.port;
  }
  return options;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseGraphs(value: unknown): GraphInfo[] | undefined {
  if (!Array.isArray(value)) {
    return undefined;
  }
  const graphs: GraphInfo[] = [];
  for (const item of value) {
    if (!isRecord(item) || typeof item.id !== 'string' || typeof item.nodeCount !== 'number') {
      return undefined;
    }
    graphs.push({ id: item.id, nodeCount: item.nodeCount });
  }
  return graphs;
}

/**
 * Reads a visualize result or a graphReady notification. Returns undefined for anything
 * that does not have the agreed shape (the caller logs it). `fallbackSource` fills in the
 * source of a visualize result that omits it.
 */
export function parseGraphEvent(value: unknown, fallbackSource?: string): GraphEvent | undefined {
  if (!isRecord(value)) {
    return undefined;
  }
  const source = typeof value.source === 'string' ? value.source : fallbackSource;
  const url = typeof value.url === 'string' ? value.url : '';
  const graphs = parseGraphs(value.graphs ?? []);
  if (source === undefined || graphs === undefined) {
    return undefined;
  }
  const event: GraphEvent = {
    source,
    url,
    graphs,
    elapsedMs: typeof value.elapsedMs === 'number' ? value.elapsedMs : 0,
    stale: value.stale === true,
  };
  if (typeof value.error === 'string' && value.error !== '') {
    event.error = value.error;
  }
  if (event.url === '' && event.error === undefined) {
    return undefined; // neither a graph to show nor an error to report
  }
  return event;
}

/** `etviz.server.refresh` answers `{refreshed: [...], errors: [message...]}`. */
export function parseRefreshErrors(value: unknown): string[] {
  if (!isRecord(value) || !Array.isArray(value.errors)) {
    return [];
  }
  return value.errors.filter((item): item is string => typeof item === 'string');
}

export function parseNodesAtLine(value: unknown): NodesAtLine | undefined {
  if (!isRecord(value) || typeof value.graphId !== 'string' || !Array.isArray(value.nodeIds)) {
    return undefined;
  }
  const nodeIds = value.nodeIds.filter((id): id is string => typeof id === 'string' && id !== '');
  return { graphId: value.graphId, nodeIds };
}

/** undefined: no recorded source (null answer or no usable line). */
export function parseSourceLine(value: unknown): SourceLine | undefined {
  if (!isRecord(value) || typeof value.uri !== 'string' || typeof value.line !== 'number') {
    return undefined;
  }
  if (!Number.isInteger(value.line) || value.line < 0 || value.uri === '') {
    return undefined;
  }
  return { uri: value.uri, line: value.line };
}

/**
 * The graph a Model Explorer URL opens on: `uiState.paneStates[0].selectedGraphId` of its
 * `data` parameter when the server set one, else the collection's first graph.
 */
export function shownGraphId(url: string, graphs: readonly GraphInfo[]): string | undefined {
  try {
    const data: unknown = JSON.parse(new URL(url).searchParams.get('data') ?? 'null');
    const panes = isRecord(data) && isRecord(data.uiState) ? data.uiState.paneStates : undefined;
    const first: unknown = Array.isArray(panes) ? panes[0] : undefined;
    if (isRecord(first) && typeof first.selectedGraphId === 'string' && first.selectedGraphId !== '') {
      return first.selectedGraphId;
    }
  } catch {
    // not a URL we can read: fall back to the first graph
  }
  return graphs[0]?.id;
}

export function totalNodes(graphs: readonly GraphInfo[]): number {
  return graphs.reduce((sum, graph) => sum + graph.nodeCount, 0);
}
