// The language server's side of the conversation (agreed in HELPERS.md), as types plus
// checks: payloads come from another process, so they are validated, not trusted.

/** Server command ids. vscode-languageclient registers these itself: never register them here. */
export const SERVER_COMMANDS = {
  visualize: 'etviz.server.visualize',
  refresh: 'etviz.server.refresh',
  stop: 'etviz.server.stop',
} as const;

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

export function totalNodes(graphs: readonly GraphInfo[]): number {
  return graphs.reduce((sum, graph) => sum + graph.nodeCount, 0);
}
