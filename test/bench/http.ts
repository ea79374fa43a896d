import {
  CONTENT_TYPES,
  decodePullResponse,
  decodePushResponse,
  encodePushRequest,
  type Delta,
  type WireFormat,
} from '../../core/index.ts';
import { startTestServer, tokenFor } from '../support/server.ts';
import type { BenchRow } from './table.ts';
import { BENCH_SCHEMA, CLIENT_ID, buildInserts, check, chunk, measure, now, scratchDir, type Splits } from './support.ts';

export const HTTP_DELTAS = 100_000;
const PUSH_BATCH = 1_000;
const PULL_LIMIT = 5_000;
const WARMUP_BATCHES = 20;
export const HTTP_PROTO_TARGET = 100_000;

export interface HttpOptions {
  readonly formats?: readonly WireFormat[];
  /** Concurrent push streams (each sends its share of the batches in order). */
  readonly streams?: number;
}

async function post(url: string, token: string, format: WireFormat, body: Uint8Array): Promise<number> {
  const res = await fetch(`${url}/v1/push`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': CONTENT_TYPES[format], accept: CONTENT_TYPES[format] },
    body: body as Uint8Array<ArrayBuffer>,
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  check(res.ok, `push answered ${res.status}: ${new TextDecoder().decode(bytes).slice(0, 200)}`);
  return decodePushResponse(format, bytes).accepted;
}

export interface BenchServer {
  readonly url: string;
  close(): Promise<void>;
}

/** The local server as tests start it: SqliteBuffer (synchronous=normal) in a fresh data dir, in this process. */
export async function startBenchServer(): Promise<BenchServer> {
  const scratch = scratchDir('http');
  const server = await startTestServer({ schema: BENCH_SCHEMA, dataDir: scratch.dir });
  return {
    url: server.url,
    close: async () => {
      await server.close();
      scratch.cleanup();
    },
  };
}

/**
 * One run against a fresh server: encode and POST every batch, then GET and
 * decode every pull page. Client encoding and decoding are inside the timed
 * sections (and also reported on their own as clientEncode/clientDecode).
 */
export async function runHttpOnce(
  format: WireFormat,
  batches: readonly (readonly Delta[])[],
  streams: number,
  start: () => Promise<BenchServer> = startBenchServer,
): Promise<Splits> {
  const server = await start();
  try {
    const token = await tokenFor('u', CLIENT_ID);
    const total = batches.reduce((n, b) => n + b.length, 0);
    let accepted = 0;
    let clientEncode = 0;
    let clientDecode = 0;
    const t0 = now();
    await Promise.all(
      Array.from({ length: streams }, async (_, s) => {
        for (let i = s; i < batches.length; i += streams) {
          const e0 = now();
          const body = encodePushRequest(format, { clientId: CLIENT_ID, schemaVersion: 1, deltas: batches[i] as readonly Delta[] });
          clientEncode += now() - e0;
          const n = await post(server.url, token, format, body); // not `accepted += await`: streams interleave
          accepted += n;
        }
      }),
    );
    const t1 = now();
    let cursor = '';
    let pulled = 0;
    for (;;) {
      const res = await fetch(`${server.url}/v1/pull?limit=${PULL_LIMIT}&cursor=${cursor}`, {
        headers: { authorization: `Bearer ${token}`, accept: CONTENT_TYPES[format] },
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      check(res.ok, `pull answered ${res.status}`);
      const d0 = now();
      const page = decodePullResponse(format, bytes);
      clientDecode += now() - d0;
      pulled += page.changes.length;
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
    const t2 = now();
    check(accepted === total, `accepted ${accepted} of ${total}`);
    check(pulled === total, `pulled ${pulled} of ${total}`);
    return { push: t1 - t0, pull: t2 - t1, total: t2 - t0, clientEncode, clientDecode };
  } finally {
    await server.close();
  }
}

export async function benchHttp(options: HttpOptions = {}): Promise<BenchRow[]> {
  const formats = options.formats ?? ['proto', 'json'];
  const streams = options.streams ?? 1;
  const batches = chunk(buildInserts(HTTP_DELTAS), PUSH_BATCH);
  const rows: BenchRow[] = [];
  const shared = `server shares this process${streams > 1 ? `, ${streams} push streams` : ''}`;
  for (const format of formats) {
    const m = await measure((i) => runHttpOnce(format, i < 0 ? batches.slice(0, WARMUP_BATCHES) : batches, streams), {
      label: `http ${format}`,
    });
    const target = format === 'proto' ? HTTP_PROTO_TARGET : undefined;
    rows.push(
      {
        name: `http ${format}: push+pull`,
        count: HTTP_DELTAS,
        unit: 'deltas',
        seconds: (m['total'] as number) / 1000,
        ...(target !== undefined ? { target } : {}),
        note: `SqliteBuffer; ${shared}; client codec ${(((m['clientEncode'] as number) + (m['clientDecode'] as number)) / 1000).toFixed(2)} s`,
      },
      { name: `http ${format}: push only`, count: HTTP_DELTAS, unit: 'deltas', seconds: (m['push'] as number) / 1000, note: `batches of ${PUSH_BATCH}` },
      { name: `http ${format}: pull only`, count: HTTP_DELTAS, unit: 'deltas', seconds: (m['pull'] as number) / 1000, note: `limit ${PULL_LIMIT}` },
    );
  }
  return rows;
}
