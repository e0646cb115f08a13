import * as vscode from 'vscode';

/** Where a panel opens: beside the editor keeping its focus (the graph), or in the active
 * column taking it (a comparison, the memory timeline). */
export type PanelPlace = 'beside' | 'active';

/** A webview panel whose page is built inline (scripts on, no local resources): every panel
 * of the extension is made here, so their options stay one. */
export function createInlinePanel(viewType: string, title: string, place: PanelPlace): vscode.WebviewPanel {
  const column = place === 'beside'
    ? { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }
    : { viewColumn: vscode.ViewColumn.Active, preserveFocus: false };
  return vscode.window.createWebviewPanel(viewType, title, column, {
    enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [],
  });
}
