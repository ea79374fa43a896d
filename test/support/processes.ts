import type { ChildProcess } from 'node:child_process';

/** Stop a service the tests started (by its PID): SIGTERM, then SIGKILL after 5 s. */
export async function stopProcess(child: ChildProcess, pid: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
  }, 5_000);
  await exited;
  clearTimeout(timer);
}
