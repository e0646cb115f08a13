// Pure: "etviz: Profile on This Machine" (issue 17). The settings sent to the server, and
// its `etviz.server.profile` answer read: the graphs (whose page URL loads the latency
// node data) plus the profile's one-line summary.

import { type GraphEvent, parseGraphEvent } from './protocol';

export type ProfileMode = 'off' | 'command' | 'onSave';

/** `etviz.profile`, `etviz.profileIterations` and `etviz.profileNumericGap` (issue 28: keep
 * the ETRecord, record a debug buffer), as the server takes them. */
export interface ProfileSettings {
  profile: ProfileMode;
  profileIterations: number;
  profileNumericGap: boolean;
}

export const DEFAULT_ITERATIONS = 20;

/** The setting values as read (anything odd falls back to the defaults). */
export function profileSettings(mode: unknown, iterations: unknown, numericGap: unknown = false): ProfileSettings {
  const profile: ProfileMode = mode === 'off' || mode === 'onSave' ? mode : 'command';
  const count = typeof iterations === 'number' && Number.isInteger(iterations) && iterations >= 1 ? iterations : DEFAULT_ITERATIONS;
  return { profile, profileIterations: count, profileNumericGap: numericGap === true };
}

export interface ProfileAnswer {
  event: GraphEvent;
  summary: string;
}

/** The profile command's answer: a graph event (the URL carries `nodeData`) and its summary. */
export function parseProfileAnswer(value: unknown, fallbackSource: string): ProfileAnswer | undefined {
  const event = parseGraphEvent(value, fallbackSource);
  if (event === undefined || event.url === '') {
    return undefined;
  }
  const summary = typeof value === 'object' && value !== null && typeof (value as { summary?: unknown }).summary === 'string'
    ? (value as { summary: string }).summary
    : '';
  return { event, summary };
}

/** Whether a page URL loads node data (Model Explorer's `nodeData` in its `data` parameter). */
export function nodeDataOf(url: string): string[] {
  try {
    const data: unknown = JSON.parse(new URL(url).searchParams.get('data') ?? 'null');
    const files = typeof data === 'object' && data !== null ? (data as { nodeData?: unknown }).nodeData : undefined;
    return Array.isArray(files) ? files.filter((f): f is string => typeof f === 'string') : [];
  } catch {
    return [];
  }
}

/** The notification after a profile. */
export function profileMessage(file: string, answer: ProfileAnswer): string {
  const overlays = nodeDataOf(answer.event.url).length;
  const what = answer.summary !== '' ? answer.summary : 'done';
  return `etviz: profiled ${file}: ${what}${overlays > 0 ? '' : ' (no latency data to show)'}`;
}
