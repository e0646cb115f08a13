// Pure logic of "etviz: Compare Stages" (issue 18): the server's `etviz.server.compare`
// answer checked, the default pair of stages, and which nodes of one stage are the
// counterparts of a node of another. The correspondence comes from the worker (where the
// programs lived): each op node of each stage lists its origins (the nodes of the first
// traced program it came from); two nodes correspond when their origins meet, for any two
// stages, consecutive or not.

export interface StageNode {
  origins: string[];
  kind: string; // op | qdq | wrapper | memory
  delegated: boolean;
}

export interface CompareStage {
  graphId: string;
  stage: string; // exported | quantized | edge | lowered | executorch
  url?: string; // the Model Explorer page showing that graph
  nodes: Map<string, StageNode>;
}

export interface CompareAnswer {
  source: string;
  stages: CompareStage[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseNodes(value: unknown): Map<string, StageNode> {
  const nodes = new Map<string, StageNode>();
  if (!isRecord(value)) {
    return nodes;
  }
  for (const [id, info] of Object.entries(value)) {
    if (isRecord(info) && Array.isArray(info.origins) && typeof info.kind === 'string') {
      const origins = info.origins.filter((o): o is string => typeof o === 'string');
      nodes.set(id, { origins, kind: info.kind, delegated: info.delegated === true });
    }
  }
  return nodes;
}

/** The server's answer, validated (it comes from another process); undefined if malformed. */
export function parseCompareAnswer(value: unknown): CompareAnswer | undefined {
  if (!isRecord(value) || typeof value.source !== 'string' || !Array.isArray(value.stages)) {
    return undefined;
  }
  const doc = isRecord(value.correspondence) ? value.correspondence : {};
  const nodesOf = new Map<string, unknown>();
  for (const stage of Array.isArray(doc.stages) ? doc.stages : []) {
    if (isRecord(stage) && typeof stage.graphId === 'string') {
      nodesOf.set(stage.graphId, stage.nodes);
    }
  }
  const stages: CompareStage[] = [];
  for (const stage of value.stages) {
    if (!isRecord(stage) || typeof stage.graphId !== 'string' || typeof stage.stage !== 'string') {
      return undefined;
    }
    stages.push({
      graphId: stage.graphId,
      stage: stage.stage,
      url: typeof stage.url === 'string' ? stage.url : undefined,
      nodes: parseNodes(nodesOf.get(stage.graphId)),
    });
  }
  return stages.length >= 2 ? { source: value.source, stages } : undefined;
}

/** Default pair: the first stage against the last (what the script started and ended with). */
export function defaultPair(stages: CompareStage[]): [number, number] {
  return [0, stages.length - 1];
}

const KIND_ORDER: Record<string, number> = { op: 0, qdq: 1, memory: 2, wrapper: 3 };

/**
 * The nodes of `to` that correspond to `nodeId` of `from`, best first: nodes of the same kind
 * (an op's op, a q/dq's q/dq), then ops before q/dq, each group in graph order. Delegate
 * wrappers (getitem of a delegate call) are nobody's counterpart.
 */
export function counterparts(from: CompareStage, nodeId: string, to: CompareStage): string[] {
  const mine = from.nodes.get(nodeId);
  if (mine === undefined || mine.origins.length === 0) {
    return [];
  }
  const origins = new Set(mine.origins);
  const found: { id: string; rank: number; order: number }[] = [];
  let order = 0;
  for (const [id, node] of to.nodes) {
    order++;
    if (node.kind === 'wrapper' || !node.origins.some((o) => origins.has(o))) {
      continue;
    }
    const rank = (node.kind === mine.kind ? 0 : 10) + (KIND_ORDER[node.kind] ?? 5);
    found.push({ id, rank, order });
  }
  found.sort((a, b) => a.rank - b.rank || a.order - b.order);
  return found.map((f) => f.id);
}

/** The status note after a selection synced from one side to the other. */
export function syncNote(nodeId: string, from: CompareStage, found: string[], to: CompareStage): string {
  if (found.length === 0) {
    return `etviz: ${nodeId} (${from.stage}) has no counterpart in ${to.stage}`;
  }
  const more = found.length > 1 ? ` (1 of ${found.length}: ${found.join(', ')})` : '';
  return `etviz: ${nodeId} (${from.stage}) is ${found[0]} in ${to.stage}${more}`;
}

/** What a quick pick shows for a stage. */
export function stageLabel(stage: CompareStage): string {
  return `${stage.stage}: ${stage.graphId}`;
}
