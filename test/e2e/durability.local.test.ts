import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import { TODO_SCHEMA, freePort, startChildServer, tempDir, tokenFor, type ChildServer } from '../support/server.ts';

describe('durability of the embedded default', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function open(url: string, clientId: string, database = ':memory:'): Promise<LakeSyncClient> {
    const c = await LakeSyncClient.open({
      url,
      database,
      clientId,
      schema: TODO_SCHEMA,
      getToken: ({ clientId: id }) => tokenFor('user-1', id),
      pushBatch: 25,
    });
    cleanup.push(() => c.close());
    return c;
  }

  it('loses no acknowledged delta when the server is SIGKILLed mid-run', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    let server: ChildServer = await startChildServer({ dataDir, port });
    cleanup.push(() => server.stop().catch(() => undefined));
    const writer = await open(server.url, 'writer', join(tempDir(), 'writer.db'));

    // Write and sync continuously; kill -9 the server while pushes are in flight.
    let written = 0;
    let stop = false;
    const work = (async () => {
      while (!stop) {
        writer.transaction(() => {
          for (let i = 0; i < 20; i++) {
            writer.insert('todos', `t${written}`, { title: `todo ${written}`, position: written });
            written++;
          }
        });
        await writer.sync().catch(() => undefined); // offline while the server is down: keep writing
      }
    })();
    while (written < 400) await new Promise((r) => setTimeout(r, 5));
    await server.kill();
    // What the writer holds as acknowledged at the moment of the kill.
    const pendingAtKill = new Set(writer.store.outbox(1_000_000).map((i) => i.delta.rowId));
    const writtenAtKill = written;
    stop = true;
    await work;

    server = await startChildServer({ dataDir, port });
    const reader = await open(server.url, 'reader');
    await reader.sync();
    const have = new Set(reader.db.prepare('SELECT id FROM todos').pluck().all() as string[]);
    for (let i = 0; i < writtenAtKill; i++) {
      const id = `t${i}`;
      if (!pendingAtKill.has(id)) expect(have.has(id), `acknowledged ${id} lost`).toBe(true);
    }

    // The writer retries its outbox: everything arrives exactly once.
    await writer.sync();
    expect(writer.store.pendingCount()).toBe(0);
    await reader.sync();
    expect(reader.db.prepare('SELECT count(*) FROM todos').pluck().get()).toBe(written);
    const fresh = await open(server.url, 'auditor');
    await fresh.sync();
    expect(fresh.db.prepare('SELECT * FROM todos ORDER BY id').all()).toEqual(writer.db.prepare('SELECT * FROM todos ORDER BY id').all());
    // Exactly once in the log: count deltas through a raw pull.
    const res = await fetch(`${server.url}/v1/admin/stats`, {
      headers: { authorization: `Bearer ${await tokenFor('admin', 'admin', { role: 'admin' })}` },
    });
    expect(((await res.json()) as { head: string }).head).toBe(String(written));
  });
});
