// Generated from etviz_lsp/graph/inputs.py by scripts/write_input_kinds.py: do not edit.
// tests/test_input_kinds.py fails when it differs from the Python table.
import type { InputKind } from './input_kinds';

export const TABLE_KINDS: readonly InputKind[] = [
  { suffix: '.py', runsScript: true, needsTrust: true, mayUnpickle: false },
  { suffix: '.pt2', runsScript: false, needsTrust: false, mayUnpickle: true },
  { suffix: '.pte', runsScript: false, needsTrust: false, mayUnpickle: false },
  { suffix: '.etrecord', runsScript: false, needsTrust: false, mayUnpickle: false },
];
