// The kinds of file the server opens. The server says which at initialize
// (capabilities.experimental.etviz.inputKinds, from etviz_lsp/graph/inputs.py); until it
// has answered (or when an older server says nothing) the kinds below apply. package.json's
// `when` clauses and activation events are static and list the same suffixes.

export interface InputKind {
  suffix: string; // '.pte'
  runsScript: boolean;
  needsTrust: boolean;
  mayUnpickle: boolean;
}

export const DEFAULT_KINDS: readonly InputKind[] = [
  { suffix: '.py', runsScript: true, needsTrust: true, mayUnpickle: false },
  { suffix: '.pt2', runsScript: false, needsTrust: false, mayUnpickle: true },
  { suffix: '.pte', runsScript: false, needsTrust: false, mayUnpickle: false },
  { suffix: '.etrecord', runsScript: false, needsTrust: false, mayUnpickle: false },
];

/** The kinds in an initialize result's `experimental` capability; undefined if absent or malformed. */
export function parseInputKinds(experimental: unknown): InputKind[] | undefined {
  const kinds = (experimental as { etviz?: { inputKinds?: unknown } } | null | undefined)?.etviz?.inputKinds;
  if (!Array.isArray(kinds)) {
    return undefined;
  }
  const parsed: InputKind[] = [];
  for (const kind of kinds) {
    const k = kind as Partial<InputKind> | null;
    if (typeof k?.suffix !== 'string' || !/^\.[A-Za-z0-9]+$/.test(k.suffix)) {
      return undefined;
    }
    parsed.push({
      suffix: k.suffix,
      runsScript: k.runsScript === true,
      needsTrust: k.needsTrust === true,
      mayUnpickle: k.mayUnpickle === true,
    });
  }
  return parsed.length > 0 ? parsed : undefined;
}

/** Whether the server opens `path` (by suffix, case-insensitive as file pickers are). */
export function isVisualizable(path: string, kinds: readonly InputKind[]): boolean {
  const lower = path.toLowerCase();
  return kinds.some((kind) => lower.endsWith(kind.suffix.toLowerCase()));
}

/** "a Python export script, a .pt2, .pte or .etrecord file" for the warning. */
export function describeKinds(kinds: readonly InputKind[]): string {
  const files = kinds.filter((kind) => !kind.runsScript).map((kind) => kind.suffix);
  const script = kinds.some((kind) => kind.runsScript) ? ['a Python export script'] : [];
  if (files.length === 0) {
    return script.join('');
  }
  const list = files.length === 1 ? files[0] : `${files.slice(0, -1).join(', ')} or ${files[files.length - 1]}`;
  return [...script, `a ${list} file`].join(' or ');
}
