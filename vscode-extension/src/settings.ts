// The extension's settings, read in one place.

import * as vscode from 'vscode';
import type { FirstGraph } from './first_graph';
import type { ExternalUriMode } from './frame_url';
import { type ProfileSettings, profileSettings } from './profile';
import type { EtvizSettings, WorkerMode } from './protocol';

export interface Settings extends EtvizSettings, ProfileSettings {
  pythonPath: string;
  externalUri: ExternalUriMode;
  firstGraph: FirstGraph;
}

export function readSettings(scope?: vscode.Uri): Settings {
  // etviz.pythonPath and etviz.allowPickle are restricted settings: in an untrusted
  // workspace VS Code returns only the user's own value, never the workspace's.
  const config = vscode.workspace.getConfiguration('etviz', scope);
  return {
    pythonPath: config.get<string>('pythonPath', ''),
    autoRefresh: config.get<boolean>('autoRefresh', true),
    allowPickle: config.get<boolean>('allowPickle', false),
    timeout: config.get<number>('timeout', 1800),
    port: config.get<number>('port', 0),
    numeric: config.get<string>('numeric', 'onRun') === 'off' ? 'off' : 'onRun',
    notDelegatedDiagnostics: config.get<boolean>('notDelegatedDiagnostics', true),
    prestartWorker: config.get<boolean>('prestartWorker', true),
    workerMode: workerMode(config.get<string>('workerMode', 'auto')),
    externalUri: config.get<ExternalUriMode>('externalUri', 'auto'),
    firstGraph: config.get<string>('firstGraph', 'last') === 'first' ? 'first' : 'last',
    ...profileSettings(config.get<unknown>('profile'), config.get<unknown>('profileIterations'), config.get<unknown>('profileNumericGap')),
  };
}

function workerMode(value: string): WorkerMode {
  return value === 'fork' || value === 'portable' ? value : 'auto';
}
