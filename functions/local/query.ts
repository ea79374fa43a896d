import { fileURLToPath } from 'node:url';
import { DuckDBInstance, LIST, listValue, timestampTZValue, VARCHAR, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import {
  asOfSql,
  changesSql,
  ident,
  lakeCell,
  readTable,
  sqlType,
  stateSql,
  type HotSource,
  type TableRead,
} from '../../core/lake/analytics.ts';
import type { Lake } from '../../core/lake/flush.ts';
import type { NestedField } from '../../core/lake/iceberg/types.ts';
import { changeTableName } from '../../core/lake/layout.ts';
import type { Hlc } from '../../core/hlc.ts';
import { hlcWall } from '../../core/hlc.ts';
import type { ColumnValue } from '../../core/values.ts';

/**
 * SQL over the local lake with DuckDB (`lakesync query`). Every synced table
 * `t` is two views:
 *   t          its current state: the lake's state table (position deletes
 *              applied) with the rows the buffer changed since replaced by
 *              their buffered state: the state clients converge to, now;
 *   t_changes  every delta: the change table plus the buffer's unflushed ones.
 * With `asOf`, `t` is the state made of every delta stamped at or before
 * that HLC, merged in SQL from `t_changes` (time travel by HLC). With
 * `cold`, the buffer is left out (only what the lake holds).
 */
export interface QueryOptions {
  readonly asOf?: Hlc;
}

export interface QueryResult {
  readonly columns: string[];
  readonly rows: Record<string, unknown>[];
}

export async function queryLake(lake: Lake, source: HotSource | undefined, sql: string, options: QueryOptions = {}): Promise<QueryResult> {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    await conn.run(`SET TimeZone = 'UTC'`);
    await conn.run('CREATE TEMP TABLE __uris (uri VARCHAR, path VARCHAR)');
    for (const table of lake.stateTables()) await defineViews(conn, await readTable(lake, table, source), options);
    const result = await conn.runAndReadAll(sql);
    return { columns: result.columnNames(), rows: result.getRowObjectsJS() as Record<string, unknown>[] };
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

const STRING_LIST = LIST(VARCHAR);

function localPath(uri: string): string {
  return uri.startsWith('file:') ? fileURLToPath(uri) : uri;
}

async function defineViews(conn: DuckDBConnection, read: TableRead, options: QueryOptions): Promise<void> {
  const t = read.table;
  const hotChanges = `__hot_${t}_changes`;
  const hotState = `__hot_${t}`;
  const touched = `__touched_${t}`;
  const changeFields = read.changes.schema.fields;
  const stateFields = read.state.schema.fields.filter((f) => f.name !== '_state');

  await conn.run(`CREATE TEMP TABLE ${ident(hotChanges)} (${columnsDdl(changeFields)})`);
  await append(conn, hotChanges, (a) => {
    for (const e of read.hotChanges) {
      const d = e.delta;
      for (const f of changeFields) {
        if (appendShared(a, f.name, e.seq, d.rowId, d.hlc)) continue;
        switch (f.name) {
          case '_delta_id':
            a.appendVarchar(d.deltaId);
            break;
          case '_op':
            a.appendVarchar(d.op);
            break;
          case '_client_id':
            a.appendVarchar(d.clientId);
            break;
          case '_set_columns':
            a.appendList(listValue(Object.keys(d.columns)), STRING_LIST);
            break;
          default:
            appendCell(a, f, lakeCell(d.columns[f.name], f));
        }
      }
      a.endRow();
    }
  });

  await conn.run(`CREATE TEMP TABLE ${ident(touched)} (_row_id VARCHAR)`);
  await append(conn, touched, (a) => {
    for (const id of read.touched) {
      a.appendVarchar(id);
      a.endRow();
    }
  });

  await conn.run(`CREATE TEMP TABLE ${ident(hotState)} (${columnsDdl(stateFields)})`);
  await append(conn, hotState, (a) => {
    for (const r of read.hotRows) {
      for (const f of stateFields) {
        if (!appendShared(a, f.name, r._seq, r._row_id, r._hlc)) appendCell(a, f, lakeCell(r.values[f.name], f));
      }
      a.endRow();
    }
  });

  await append(conn, '__uris', (a) => {
    for (const uri of read.state.data) {
      a.appendVarchar(uri);
      a.appendVarchar(localPath(uri));
      a.endRow();
    }
  });

  const changesView = ident(changeTableName(t));
  await conn.run(`CREATE VIEW ${changesView} AS ${changesSql(read.changes, ident(hotChanges), localPath)}`);
  const stateView =
    options.asOf === undefined
      ? stateSql(read.state, { hot: ident(hotState), touched: ident(touched), uris: '__uris' }, localPath)
      : asOfSql(read.changes.schema, `SELECT * FROM ${changesView}`, options.asOf);
  await conn.run(`CREATE VIEW ${ident(t)} AS ${stateView}`);
}

/** The system columns both tables have, from an entry's or a row's seq, row id and hlc; false for any other column. */
function appendShared(a: DuckDBAppender, name: string, seq: bigint, rowId: string, hlc: bigint): boolean {
  switch (name) {
    case '_seq':
      a.appendBigInt(seq);
      return true;
    case '_row_id':
      a.appendVarchar(rowId);
      return true;
    case '_hlc':
      a.appendBigInt(BigInt.asIntN(64, hlc));
      return true;
    case '_hlc_time':
      a.appendTimestampTZ(timestampTZValue(BigInt(hlcWall(hlc)) * 1000n));
      return true;
    default:
      return false;
  }
}

function columnsDdl(fields: readonly NestedField[]): string {
  return fields.map((f) => `${ident(f.name)} ${sqlType(f)}`).join(', ');
}

async function append(conn: DuckDBConnection, table: string, fill: (a: DuckDBAppender) => void): Promise<void> {
  const a = await conn.createAppender(table, 'main', 'temp');
  try {
    fill(a);
    a.flushSync();
  } finally {
    a.closeSync();
  }
}

function appendCell(a: DuckDBAppender, f: NestedField, v: ColumnValue): void {
  if (v === null) return a.appendNull();
  switch (sqlType(f)) {
    case 'BIGINT':
      return a.appendBigInt(typeof v === 'bigint' ? v : BigInt(v as number));
    case 'DOUBLE':
      return a.appendDouble(Number(v));
    case 'BOOLEAN':
      return a.appendBoolean(v === true);
    default:
      return a.appendVarchar(String(v));
  }
}
