/**
 * Graceful shutdown on SIGINT/SIGTERM: the first signal lets running work
 * finish (requests drain, a flush in progress completes) and exits 0; a
 * second one exits at once with 130. Cutting a flush short is safe (flush is
 * exactly-once from any step), and someone pressing Ctrl-C twice means it.
 */
export interface SignalSource {
  on(signal: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
}

export function exitOnSignals(
  server: { close(): Promise<void> },
  log: (entry: object) => void,
  signals: SignalSource = process,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log({ level: 'warn', msg: 'second signal: exiting now, without waiting for running work', signal });
      exit(130);
      return;
    }
    stopping = true;
    log({ level: 'info', msg: 'shutting down (send the signal again to exit at once)', signal });
    server.close().then(
      () => exit(0),
      (err: unknown) => {
        log({ level: 'error', msg: 'shutdown failed', error: String(err) });
        exit(1);
      },
    );
  };
  signals.on('SIGINT', () => stop('SIGINT'));
  signals.on('SIGTERM', () => stop('SIGTERM'));
}
