// The kinds of file the server opens. The server says which at initialize
// (capabilities.experimental.etviz.inputKinds, from etviz_lsp/graph/inputs.py); until it
// has answered (or when an older server says nothing) the table generated from the same
// Python table applies (input_kinds_table.ts, scripts/write_input_kinds.py). package.json's
// `when` clauses and activation events are static: that script checks them against it.
// Every decision by suffix in the extension is made here, without case (model.PTE is a
// .pte), by the server's own rule for what a suffix is.

import { TABLE_KINDS } from './input_kinds_table';

export interface InputKind {
  suffix: string; // '.pte' (lower case)
  runsScript: boolean;
  needsTrust: boolean;
  mayUnpickle: boolean;
}

export const DEFAULT_KINDS: readonly InputKind[] = TABLE_KINDS;

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

/** `.PTE` for `/w/model.PTE`: from the name's last dot, none for a name that is only dots
 * before it (`.pte`): Python's `os.path.splitext`, as the server reads a suffix. */
export function suffixOf(path: string): string {
  const name = path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 && /[^.]/.test(name.slice(0, dot)) ? name.slice(dot) : '';
}

/** The kind of `path` by its suffix, in any case; undefined when the server does not open it. */
export function kindOf(path: string, kinds: readonly InputKind[]): InputKind | undefined {
  const suffix = suffixOf(path).toLowerCase();
  return suffix === '' ? undefined : kinds.find((kind) => kind.suffix.toLowerCase() === suffix);
}

/** Whether the server opens `path` (by suffix, case-insensitive as file pickers are). */
export function isVisualizable(path: string, kinds: readonly InputKind[]): boolean {
  return kindOf(path, kinds) !== undefined;
}

/** Whether `path` is an export script (it runs; launch configurations and lines apply). */
export function isScript(path: string, kinds: readonly InputKind[] = DEFAULT_KINDS): boolean {
  return kindOf(path, kinds)?.runsScript === true;
}

/** Glob patterns of the files that are read, not run, in any case: `**\/*.[pP][tT][eE]`. */
export function readFilePatterns(kinds: readonly InputKind[]): string[] {
  const anyCase = (c: string): string => (c.toLowerCase() === c.toUpperCase() ? c : `[${c.toLowerCase()}${c.toUpperCase()}]`);
  return kinds.filter((kind) => !kind.runsScript).map((kind) => `**/*.${[...kind.suffix.slice(1)].map(anyCase).join('')}`);
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
