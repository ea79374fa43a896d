import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import { scanTable } from '../../core/lake/scan.ts';
import { openLocalLake } from '../../functions/local/lake.ts';
import { TODO_SCHEMA, adminFlush, freePort, startChildServer, tempDir, tokenFor, type ChildServer } from '../support/server.ts';

describe('shutdown of the embedded default', () => {
  const cleanup: (() => Promise<void>)[] = [];
  const env = { ...process.env };
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
    process.env = { ...env };
  });

  it('exits promptly on SIGTERM while clients push and the lake flushes, and loses nothing', async () => {
    process.env['LAKESYNC_FLUSH_INTERVAL_MS'] = '50'; // a flush is nearly always running
    process.env['LAKESYNC_CHECKPOINT_EVERY'] = '100';
    const dataDir = tempDir();
    const port = await freePort();
    let server: ChildServer = await startChildServer({ dataDir, port });
    cleanup.push(() => server.stop().catch(() => undefined));
    const writer = await LakeSyncClient.open({
      url: server.url,
      database: ':memory:',
      clientId: 'writer',
      schema: TODO_SCHEMA,
      getToken: ({ clientId }) => tokenFor('user-1', clientId),
    });
    cleanup.push(() => writer.close());
    let written = 0;
    let stop = false;
    const work = (async () => {
      while (!stop) {
        writer.transaction(() => {
          for (let i = 0; i < 20; i++) writer.insert('todos', `t${written}`, { title: `todo ${written}`, position: written++ });
        });
        await writer.sync().catch(() => undefined);
      }
    })();
    while (written < 600) await new Promise((r) => setTimeout(r, 5));
    const exitCode = new Promise<number | null>((r) => server.process.once('exit', (code) => r(code)));
    const started = Date.now();
    server.process.kill('SIGTERM');
    const code = await Promise.race([exitCode, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
    stop = true;
    await work;
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);

    server = await startChildServer({ dataDir, port });
    await writer.sync();
    expect(writer.store.pendingCount()).toBe(0);
    const flushed = await adminFlush(server.url);
    expect(flushed.floor).toBeDefined();
    const res = await fetch(`${server.url}/v1/admin/stats`, {
      headers: { authorization: `Bearer ${await tokenFor('admin', 'admin', { role: 'admin' })}` },
    });
    expect(((await res.json()) as { head: string }).head).toBe(String(written));
    // The lake holds every delta exactly once, across the interrupted flushes.
    const local = openLocalLake(dataDir, TODO_SCHEMA, { fsync: false });
    try {
      const changes = await scanTable(local.lake, 'todos_changes', { columns: ['_row_id'] });
      expect(changes.rows).toHaveLength(written);
      expect(new Set(changes.rows.map((r) => r['_row_id'])).size).toBe(written);
    } finally {
      local.close();
    }
  });
});

describe('shutdown with a stalled client', () => {
  it('exits within a grace period even when a request never finishes arriving', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const server: ChildServer = await startChildServer({ dataDir, port });
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    // A push whose body never comes: the request stays in flight.
    socket.write(`POST /v1/push HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{"clientId":`);
    socket.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const exited = new Promise<number | null>((r) => server.process.once('exit', (code) => r(code)));
    const started = Date.now();
    server.process.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000))]);
    socket.destroy();
    if (code === 'hung') server.process.kill('SIGKILL');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 40_000);
});
