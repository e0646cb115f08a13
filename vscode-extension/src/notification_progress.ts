// Shows the server's work-done progress (running the script, exporting, converting) as a
// notification with a Cancel button. vscode-languageclient's own handler puts it in the
// status bar without a way to cancel; this feature is registered after the built-in one,
// so its handler for window/workDoneProgress/create replaces the built-in handler.

import * as vscode from 'vscode';
import {
  type BaseLanguageClient,
  type FeatureState,
  type StaticFeature,
  WorkDoneProgress,
  type WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  type WorkDoneProgressReport,
} from 'vscode-languageclient';

export class NotificationProgressFeature implements StaticFeature {
  private readonly active = new Map<string, () => void>();
  private readonly busyEmitter = new vscode.EventEmitter<boolean>();
  /** true while at least one server job shows progress. */
  readonly onDidChangeBusy = this.busyEmitter.event;

  constructor(private readonly client: BaseLanguageClient) {}

  getState(): FeatureState {
    return { kind: 'static' };
  }

  fillClientCapabilities(): void {
    // window.workDoneProgress is already announced by the built-in feature.
  }

  initialize(): void {
    this.client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      this.track(String(token), token);
    });
  }

  clear(): void {
    for (const finish of this.active.values()) {
      finish();
    }
    this.active.clear();
    this.busyEmitter.fire(false);
  }

  dispose(): void {
    this.clear();
    this.busyEmitter.dispose();
  }

  private track(key: string, token: string | number): void {
    let finish: () => void = () => undefined;
    let progress: vscode.Progress<{ message?: string }> | undefined;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const begin = (value: WorkDoneProgressBegin): void => {
      void vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: value.title, cancellable: value.cancellable ?? false },
        (reporter, cancel) => {
          progress = reporter;
          if (value.message) {
            reporter.report({ message: value.message });
          }
          cancel.onCancellationRequested(() => {
            void this.client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
          });
          return done;
        },
      );
    };
    const subscription = this.client.onProgress(WorkDoneProgress.type, token, (value) => {
      if (value.kind === 'begin') {
        begin(value);
      } else if (value.kind === 'report') {
        const message = (value as WorkDoneProgressReport).message;
        if (message) {
          progress?.report({ message });
        }
      } else {
        end();
      }
    });
    const end = (): void => {
      subscription.dispose();
      finish();
      this.active.delete(key);
      this.busyEmitter.fire(this.active.size > 0);
    };
    this.active.set(key, end);
    this.busyEmitter.fire(true);
  }
}
