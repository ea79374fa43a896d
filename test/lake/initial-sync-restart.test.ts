import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LakeSyncClient } from '../../clients/node/index.ts';
import type { Schema } from '../../core/schema.ts';
import { TODO_SCHEMA, adminFlush, startTestServer, tempDir, tokenFor, type AdminFlushAnswer, type TestServer } from '../support/server.ts';

/**
 * Initial sync that is interrupted part-way through a checkpoint.
 * The rows of the chunks already applied stay in the local database when the
 * client starts over with a newer checkpoint; a row deleted in between is
 * absent from the newer checkpoint and its delete is below the newer cursor,
 * so it is never removed (a ghost row).
 */
const SCHEMA: Schema = { version: 1, tables: [...TODO_SCHEMA.tables, { name: 'notes', columns: [{ name: 'body', type: 'string' }] }] };

const clients: LakeSyncClient[] = [];
let server: TestServer | undefined;

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await server?.close();
  server = undefined;
});

async function open(url: string, clientId: string, fetchImpl?: typeof fetch): Promise<LakeSyncClient> {
  const c = await LakeSyncClient.open({
    url,
    database: ':memory:',
    clientId,
    schema: SCHEMA,
    getToken: ({ clientId: id }) => tokenFor('user-1', id),
    ...(fetchImpl === undefined ? {} : { fetch: fetchImpl }),
  });
  clients.push(c);
  return c;
}

const flush = (s: TestServer): Promise<AdminFlushAnswer> => adminFlush(s.url);

function todoIds(c: LakeSyncClient): string[] {
  return (c.db.prepare('SELECT id FROM todos ORDER BY id').all() as { id: string }[]).map((r) => r.id);
}

describe('initial sync that starts over', () => {
  it('a checkpoint collected while a client loads it leaves no ghost row after the client restarts from the newer one', async () => {
    const s = (server = await startTestServer({ schema: SCHEMA, lake: {} }));
    const a = await open(s.url, 'writer');
    a.insert('todos', 't1', { title: 'doomed', owner: 'user-1' });
    a.insert('todos', 't2', { title: 'stays', owner: 'user-1' });
    a.insert('notes', 'n1', { body: 'second chunk' });
    await a.sync();
    const first = await flush(s);
    expect(first.checkpoint).not.toBeNull();

    let interfered = false;
    const wrapped: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (!interfered && url.includes(`/v1/checkpoint/${first.checkpoint}/1`)) {
        interfered = true;
        // While B is between chunk 0 (todos) and chunk 1 (notes): t1 is deleted, a newer
        // checkpoint is built, and the old one is collected.
        a.delete('todos', 't1');
        await a.sync();
        expect((await flush(s)).checkpoint).not.toBeNull();
        rmSync(join(s.dataDir, 'lake', 'warehouse', 'lakesync', '_checkpoints', first.checkpoint as string), { recursive: true });
      }
      return fetch(input, init);
    };
    const b = await open(s.url, 'reader', wrapped);
    await b.sync();
    expect(interfered).toBe(true);
    expect(todoIds(a)).toEqual(['t2']);
    expect(todoIds(b)).toEqual(todoIds(a)); // was: b still has t1
  });

  it('a checkpoint load that fails part-way (offline) leaves no ghost row once the next sync loads a newer checkpoint', async () => {
    const s = (server = await startTestServer({ schema: SCHEMA, lake: {} }));
    const a = await open(s.url, 'writer');
    a.insert('todos', 't1', { title: 'doomed', owner: 'user-1' });
    a.insert('todos', 't2', { title: 'stays', owner: 'user-1' });
    a.insert('notes', 'n1', { body: 'second chunk' });
    await a.sync();
    const first = await flush(s);

    let offline = true;
    const wrapped: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (offline && url.includes(`/v1/checkpoint/${first.checkpoint}/1`)) throw new TypeError('fetch failed');
      return fetch(input, init);
    };
    const b = await open(s.url, 'reader', wrapped);
    await expect(b.sync()).rejects.toThrow();
    expect(b.cursor).toBe('');
    offline = false;
    a.delete('todos', 't1');
    await a.sync();
    await flush(s);
    await b.sync();
    expect(todoIds(b)).toEqual(todoIds(a)); // was: b still has t1
  });
  it('a client whose checkpoint cursor is below the buffer floor gives up (with backoff) instead of reloading the checkpoint forever', async () => {
    const s = (server = await startTestServer({ schema: SCHEMA, lake: {} }));
    const a = await open(s.url, 'writer');
    a.insert('todos', 't1', { title: 'one', owner: 'user-1' });
    await a.sync();
    const older = await flush(s);
    a.insert('todos', 't2', { title: 'two', owner: 'user-1' });
    await a.sync();
    const newer = await flush(s);
    expect(newer.checkpoint).not.toBe(older.checkpoint);
    // The newest checkpoint is one whose cursor is below the floor (say, a server bug): a pointer
    // that sorts above every other names the older checkpoint.
    const root = join(s.dataDir, 'lake', 'warehouse', 'lakesync', '_checkpoints');
    const manifest = readFileSync(join(root, older.checkpoint as string, 'manifest.json'), 'utf8');
    writeFileSync(
      join(root, 'latest', `${'9'.repeat(20)}-${older.checkpoint}.json`),
      JSON.stringify({ checkpointId: older.checkpoint, cursor: (JSON.parse(manifest) as { cursor: string }).cursor }),
    );

    let infoRequests = 0;
    const wrapped: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.endsWith('/v1/checkpoint') && ++infoRequests > 20) throw new TypeError('client is looping');
      return fetch(input, init);
    };
    const b = await open(s.url, 'reader', wrapped);
    await expect(b.sync()).rejects.toThrow();
    expect(infoRequests).toBeLessThanOrEqual(3); // was: 21 (loadCheckpoint + CURSOR_EXPIRED, without end)
  });

  it('a client killed part-way through a checkpoint keeps its clock past the stamps it loaded: an offline edit after the restart wins', async () => {
    const s = (server = await startTestServer({ schema: SCHEMA, lake: {} }));
    // The writer's clock runs 30 s ahead (within the server's drift limit).
    const a = await LakeSyncClient.open({
      url: s.url,
      database: ':memory:',
      clientId: 'writer',
      schema: SCHEMA,
      wallClock: () => Date.now() + 30_000,
      getToken: ({ clientId: id }) => tokenFor('user-1', id),
    });
    clients.push(a);
    a.insert('todos', 't1', { title: 'seen', owner: 'user-1' });
    a.insert('notes', 'n1', { body: 'second chunk' });
    await a.sync();
    const cp = await flush(s);
    const database = join(tempDir(), 'reader.db');
    const dies: typeof fetch = async (input, init) => {
      if (String(input instanceof Request ? input.url : input).includes(`/v1/checkpoint/${cp.checkpoint}/1`)) throw new TypeError('killed');
      return fetch(input, init);
    };
    const b = await LakeSyncClient.open({ url: s.url, database, clientId: 'reader', schema: SCHEMA, fetch: dies, getToken: ({ clientId: id }) => tokenFor('user-1', id) });
    await expect(b.sync()).rejects.toThrow();
    expect(todoIds(b)).toEqual(['t1']); // chunk 0 is in, the load did not finish
    await b.close();
    // Restarted, offline: the user edits the row they see.
    const again = await LakeSyncClient.open({ url: s.url, database, clientId: 'reader', schema: SCHEMA, getToken: ({ clientId: id }) => tokenFor('user-1', id) });
    clients.push(again);
    again.update('todos', 't1', { title: 'edited after the restart' });
    expect(again.db.prepare('SELECT title FROM todos').pluck().all()).toEqual(['edited after the restart']); // was: 'seen'
    await again.sync();
    await a.sync();
    expect(a.db.prepare('SELECT title FROM todos').pluck().all()).toEqual(['edited after the restart']);
  });

  it('a load cut short goes on with its checkpoint after a newer one is published (a slow link that started over each time might never finish)', async () => {
    // The buffer keeps deltas below the newest checkpoint for pulls, as deployments do by default.
    const s = (server = await startTestServer({ schema: SCHEMA, lake: { retainDeltas: 1000 } }));
    const a = await open(s.url, 'writer');
    a.insert('todos', 't1', { title: 'doomed', owner: 'user-1' });
    a.insert('todos', 't2', { title: 'stays', owner: 'user-1' });
    a.insert('notes', 'n1', { body: 'second chunk' });
    await a.sync();
    const first = await flush(s);
    const fetched: string[] = [];
    let offline = true;
    const wrapped: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      const m = /\/v1\/checkpoint\/([^/]+)\/(\d+)$/.exec(url);
      if (m !== null) {
        fetched.push(`${m[1] === first.checkpoint ? 'first' : 'newer'}/${m[2]}`);
        if (offline && m[2] === '1') throw new TypeError('fetch failed');
      }
      return fetch(input, init);
    };
    const b = await open(s.url, 'reader', wrapped);
    await expect(b.sync()).rejects.toThrow();
    offline = false;
    a.delete('todos', 't1');
    a.insert('todos', 't3', { title: 'later', owner: 'user-1' });
    await a.sync();
    const second = await flush(s);
    expect(second.checkpoint).not.toBe(first.checkpoint);
    await b.sync();
    expect(fetched).toEqual(['first/0', 'first/1', 'first/1']); // nothing of the newer one, chunk 0 not again
    expect(todoIds(b)).toEqual(todoIds(a));
    expect(todoIds(b)).toEqual(['t2', 't3']);
  });

  it('a load that stopped part-way (offline, or killed) resumes at the next chunk of the same checkpoint, across restarts', async () => {
    const s = (server = await startTestServer({ schema: SCHEMA, lake: {} }));
    const a = await open(s.url, 'writer');
    a.insert('todos', 't1', { title: 'one', owner: 'user-1' });
    a.insert('notes', 'n1', { body: 'second chunk' });
    await a.sync();
    const cp = await flush(s);
    const database = join(tempDir(), 'resume.db');
    const chunks: string[] = [];
    let fail = true;
    const counting: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      const m = /\/v1\/checkpoint\/[^/]+\/(\d+)$/.exec(url);
      if (m !== null) {
        chunks.push(m[1] as string);
        if (fail && m[1] === '1') throw new TypeError('fetch failed');
      }
      return fetch(input, init);
    };
    const b = await LakeSyncClient.open({ url: s.url, database, clientId: 'reader', schema: SCHEMA, fetch: counting, getToken: ({ clientId: id }) => tokenFor('user-1', id) });
    await expect(b.sync()).rejects.toThrow();
    await b.close();
    fail = false;
    const again = await LakeSyncClient.open({ url: s.url, database, clientId: 'reader', schema: SCHEMA, fetch: counting, getToken: ({ clientId: id }) => tokenFor('user-1', id) });
    clients.push(again);
    await again.sync();
    expect(chunks).toEqual(['0', '1', '1']); // chunk 0 was not fetched again
    expect(todoIds(again)).toEqual(['t1']);
    expect(again.db.prepare('SELECT body FROM notes').pluck().all()).toEqual(['second chunk']);
    expect(again.cursor).not.toBe('');
    expect(cp.checkpoint).not.toBeNull();
  });
});


describe('initial sync killed after its last chunk', () => {
  it('a client killed between the last chunk and the cursor fetches no chunk again, and local writes made meanwhile survive', async () => {
    const s = (server = await startTestServer({ schema: SCHEMA, lake: {} }));
    const a = await open(s.url, 'writer');
    a.insert('todos', 't1', { title: 'one', owner: 'user-1' });
    a.insert('notes', 'n1', { body: 'second chunk' });
    await a.sync();
    await flush(s);
    const database = join(tempDir(), 'killed.db');
    const chunks: string[] = [];
    const counting: typeof fetch = async (input, init) => {
      const m = /\/v1\/checkpoint\/[^/]+\/(\d+)$/.exec(String(input instanceof Request ? input.url : input));
      if (m !== null) chunks.push(m[1] as string);
      return fetch(input, init);
    };
    const opts = { url: s.url, database, clientId: 'reader', schema: SCHEMA, fetch: counting, getToken: ({ clientId: id }: { clientId: string }) => tokenFor('user-1', id) };
    const b = await LakeSyncClient.open(opts);
    await b.sync();
    // As if killed before the cursor was written: every chunk is in, the cursor is not.
    b.db.prepare("UPDATE _lakesync_meta SET value = '' WHERE key = 'cursor'").run();
    b.update('todos', 't1', { title: 'edited offline' });
    await b.close();
    const again = await LakeSyncClient.open({ ...opts, live: false });
    clients.push(again);
    await again.sync();
    expect(chunks).toEqual(['0', '1']);
    expect(again.cursor).not.toBe('');
    expect(again.db.prepare('SELECT title FROM todos').pluck().all()).toEqual(['edited offline']);
    expect(again.db.prepare('SELECT body FROM notes').pluck().all()).toEqual(['second chunk']);
  });
});
