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
  showInGraph: 'etviz.server.showInGraph',
  // Issue 18: a file's stages (URL each) and their correspondence.
  compare: 'etviz.server.compare',
  // Issue 17: run the file's ExecuTorch program on this machine (profile.ts).
  profile: 'etviz.server.profile',
} as const;

/**
 * `etviz.server.nodeAt` / `showInGraph` [uri, line (0-based)] and the `etviz/selectNodes`
 * notification: the op nodes a source line created, in graph `graphId`. `url`: the graph
 * page with the first node selected and its layers expanded.
 */
export interface NodesAtLine {
  graphId: string;
  nodeIds: string[];
  namespaces: string[];
  source?: string; // the visualized file whose graph holds the nodes
  url?: string;
}

/** `etviz.server.sourceOf` [graphId, nodeId, sourceUri?]: the user's line behind a node (0-based, as LSP). */
export interface SourceLine {
  uri: string;
  line: number;
}

/** `sourceOf` when there is no line to open: why (no recorded source, file not found, unknown node). */
export interface NoSource {
  reason: string;
}

export const SELECT_NODES = 'etviz/selectNodes';

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
  // true: the stages a run has made so far (it is still running); its final graphs follow
  inProgress: boolean;
  error?: string;
  // the memory timeline beside the graph (an SVG the server wrote), when the run made a plan
  memorySvg?: string;
}

export interface InitializationOptions {
  trusted: boolean;
  allowPickle: boolean;
  pythonPath: string;
  autoRefresh: boolean;
  timeout: number;
  port?: number;
  clientPid: number;
  numeric: NumericMode;
  notDelegatedDiagnostics: boolean;
  prestartWorker: boolean;
  workerMode: WorkerMode;
}

/** etviz.workerMode: auto (fork on Linux), fork, or portable (no fork: macOS, Windows). */
export type WorkerMode = 'auto' | 'fork' | 'portable';

/** etviz.numeric: compare a run's quantized program with its float one, or not. */
export type NumericMode = 'onRun' | 'off';

export interface EtvizSettings {
  autoRefresh: boolean;
  allowPickle: boolean; // sent at start only: the server never takes it live
  timeout: number;
  port: number;
  numeric: NumericMode;
  // Information diagnostics on the lines of ops a partitioner left on the CPU.
  notDelegatedDiagnostics: boolean;
  // Start the warm worker when the server starts in a trusted workspace with export
  // scripts (sent at start only: it matters once per server).
  prestartWorker: boolean;
  workerMode: WorkerMode; // sent at start only: the server's worker keeps its mode
}

export function buildInitializationOptions(
  settings: EtvizSettings,
  pythonPath: string,
  trusted: boolean,
  clientPid: number,
): InitializationOptions {
  const options: InitializationOptions = {
    trusted,
    // Unpickling needs both: the user's opt-in and a trusted workspace.
    allowPickle: trusted && settings.allowPickle,
    pythonPath,
    autoRefresh: settings.autoRefresh,
    timeout: settings.timeout,
    clientPid,
    numeric: settings.numeric,
    notDelegatedDiagnostics: settings.notDelegatedDiagnostics,
    prestartWorker: settings.prestartWorker,
    workerMode: settings.workerMode,
  };
  // 0 means "any free port": let the server choose rather than sending a port it must bind.
  if (settings.port > 0) {
    options.port = settings.port;
  }
  return options;
}

/** The settings a running server applies live (workspace/didChangeConfiguration). */
export interface LiveSettings {
  autoRefresh: boolean;
  timeout: number;
  port: number | null; // null: any free port
  numeric: NumericMode;
  notDelegatedDiagnostics: boolean;
}

export function buildLiveSettings(settings: Omit<EtvizSettings, 'allowPickle' | 'prestartWorker' | 'workerMode'>): { etviz: LiveSettings } {
  return {
    etviz: {
      autoRefresh: settings.autoRefresh,
      timeout: settings.timeout,
      port: settings.port > 0 ? settings.port : null,
      numeric: settings.numeric,
      notDelegatedDiagnostics: settings.notDelegatedDiagnostics,
    },
  };
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
    inProgress: value.inProgress === true,
  };
  if (typeof value.error === 'string' && value.error !== '') {
    event.error = value.error;
  }
  if (typeof value.memorySvg === 'string' && value.memorySvg !== '') {
    event.memorySvg = value.memorySvg;
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

/** A line that made no node answers `graphId: null, nodeIds: []`: read as an empty answer. */
export function parseNodesAtLine(value: unknown): NodesAtLine | undefined {
  if (!isRecord(value) || !Array.isArray(value.nodeIds)) {
    return undefined;
  }
  const graphId = typeof value.graphId === 'string' ? value.graphId : '';
  const nodeIds = value.nodeIds.filter((id): id is string => typeof id === 'string' && id !== '');
  if (graphId === '' && nodeIds.length > 0) {
    return undefined; // nodes of no graph: nothing we could select
  }
  const namespaces = Array.isArray(value.namespaces)
    ? value.namespaces.map((ns) => (typeof ns === 'string' ? ns : ''))
    : [];
  const answer: NodesAtLine = { graphId, nodeIds, namespaces };
  if (typeof value.source === 'string' && value.source !== '') {
    answer.source = value.source;
  }
  if (typeof value.url === 'string' && /^https?:\/\//.test(value.url)) {
    answer.url = value.url;
  }
  return answer;
}

/** A line to open, or why there is none (the server's reason, else a generic one). */
export function parseSourceLine(value: unknown): SourceLine | NoSource {
  if (!isRecord(value)) {
    return { reason: 'no recorded source' };
  }
  const { uri, line } = value;
  if (typeof uri === 'string' && uri !== '' && typeof line === 'number' && Number.isInteger(line) && line >= 0) {
    return { uri, line };
  }
  return { reason: typeof value.reason === 'string' && value.reason !== '' ? value.reason : 'no recorded source' };
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
