import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { exitOnSignals } from './shutdown.ts';

describe('exitOnSignals', () => {
  it('waits for a graceful close on the first signal, and exits at once (130) on the second', async () => {
    const signals = new EventEmitter();
    const exits: number[] = [];
    let finish: () => void = () => undefined;
    const server = { close: () => new Promise<void>((r) => (finish = r)) }; // a flush still running
    exitOnSignals(server, () => undefined, signals, (code) => exits.push(code));
    signals.emit('SIGINT');
    await new Promise((r) => setTimeout(r, 10));
    expect(exits).toEqual([]); // still draining
    signals.emit('SIGINT');
    expect(exits).toEqual([130]);
    finish();
    await new Promise((r) => setTimeout(r, 10));
    expect(exits).toEqual([130, 0]); // process.exit would not return; the double call only shows the order
  });

  it('exits 0 after a graceful close, 1 when the close fails', async () => {
    for (const [close, code] of [[() => Promise.resolve(), 0], [() => Promise.reject(new Error('x')), 1]] as const) {
      const signals = new EventEmitter();
      const exits: number[] = [];
      exitOnSignals({ close }, () => undefined, signals, (c) => exits.push(c));
      signals.emit('SIGTERM');
      await new Promise((r) => setTimeout(r, 10));
      expect(exits).toEqual([code]);
    }
  });
});
