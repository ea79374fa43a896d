import { LakeError } from '../errors.ts';
import { parseJson, stringifyJson, toBigInt } from '../json.ts';
import type { IcebergSchema, PartitionSpec, Snapshot, SnapshotRef, SortOrder, TableMetadata } from './types.ts';

/**
 * Table metadata changes and commit requirements, named as in the Iceberg
 * REST catalog spec. REST catalogs receive them as they are; catalogs that
 * only store a metadata pointer (SQL, Glue) apply them here and write the
 * resulting metadata file themselves.
 */
export type TableUpdate =
  | { readonly action: 'assign-uuid'; readonly uuid: string }
  | { readonly action: 'upgrade-format-version'; readonly 'format-version': 2 }
  | { readonly action: 'add-schema'; readonly schema: IcebergSchema; readonly 'last-column-id'?: number }
  | { readonly action: 'set-current-schema'; readonly 'schema-id': number }
  | { readonly action: 'add-spec'; readonly spec: PartitionSpec }
  | { readonly action: 'set-default-spec'; readonly 'spec-id': number }
  | { readonly action: 'add-sort-order'; readonly 'sort-order': SortOrder }
  | { readonly action: 'set-default-sort-order'; readonly 'sort-order-id': number }
  | { readonly action: 'add-snapshot'; readonly snapshot: Snapshot }
  | ({ readonly action: 'set-snapshot-ref'; readonly 'ref-name': string } & SnapshotRef)
  | { readonly action: 'remove-snapshots'; readonly 'snapshot-ids': readonly bigint[] }
  | { readonly action: 'remove-snapshot-ref'; readonly 'ref-name': string }
  | { readonly action: 'set-location'; readonly location: string }
  | { readonly action: 'set-properties'; readonly updates: Readonly<Record<string, string>> }
  | { readonly action: 'remove-properties'; readonly removals: readonly string[] };

export type TableRequirement =
  | { readonly type: 'assert-create' }
  | { readonly type: 'assert-table-uuid'; readonly uuid: string }
  | { readonly type: 'assert-ref-snapshot-id'; readonly ref: string; readonly 'snapshot-id': bigint | null }
  | { readonly type: 'assert-last-assigned-field-id'; readonly 'last-assigned-field-id': number }
  | { readonly type: 'assert-current-schema-id'; readonly 'current-schema-id': number }
  | { readonly type: 'assert-last-assigned-partition-id'; readonly 'last-assigned-partition-id': number }
  | { readonly type: 'assert-default-spec-id'; readonly 'default-spec-id': number }
  | { readonly type: 'assert-default-sort-order-id'; readonly 'default-sort-order-id': number };

/** Table and partition statistics files (Puffin), as other engines record them in table metadata. */
export interface StatisticsHolder {
  readonly statistics?: readonly { readonly 'snapshot-id': bigint | number; readonly 'statistics-path'?: string }[];
  readonly 'partition-statistics'?: readonly { readonly 'snapshot-id': bigint | number; readonly 'statistics-path'?: string }[];
}

/** The statistics files the metadata names, with the snapshot each belongs to. */
export function statisticsFiles(m: TableMetadata): { snapshotId: string; path: string }[] {
  const h = m as StatisticsHolder;
  return [...(h.statistics ?? []), ...(h['partition-statistics'] ?? [])]
    .filter((e) => e['statistics-path'] !== undefined)
    .map((e) => ({ snapshotId: String(e['snapshot-id']), path: e['statistics-path'] as string }));
}

export const UNSORTED: SortOrder = { 'order-id': 0, fields: [] };

export function currentSchema(m: TableMetadata): IcebergSchema {
  const s = m.schemas.find((x) => x['schema-id'] === m['current-schema-id']);
  if (s === undefined) throw new LakeError('CORRUPT_METADATA', 'current schema missing');
  return s;
}

export function defaultSpec(m: TableMetadata): PartitionSpec {
  const s = m['partition-specs'].find((x) => x['spec-id'] === m['default-spec-id']);
  if (s === undefined) throw new LakeError('CORRUPT_METADATA', 'default partition spec missing');
  return s;
}

export function snapshotById(m: TableMetadata, id: bigint): Snapshot | undefined {
  return m.snapshots.find((s) => s['snapshot-id'] === id);
}

export function currentSnapshot(m: TableMetadata): Snapshot | undefined {
  const id = m.refs['main']?.['snapshot-id'] ?? m['current-snapshot-id'];
  return id === undefined ? undefined : snapshotById(m, id);
}

/** The metadata of a new, empty table (before any update is applied). */
export function newTableMetadata(options: {
  uuid: string;
  location: string;
  schema: IcebergSchema;
  spec: PartitionSpec;
  sortOrder?: SortOrder;
  properties?: Readonly<Record<string, string>>;
  nowMs: number;
}): TableMetadata {
  const sortOrder = options.sortOrder ?? UNSORTED;
  return {
    'format-version': 2,
    'table-uuid': options.uuid,
    location: options.location.replace(/\/+$/, ''),
    'last-sequence-number': 0n,
    'last-updated-ms': options.nowMs,
    'last-column-id': maxFieldId(options.schema),
    'current-schema-id': options.schema['schema-id'],
    schemas: [options.schema],
    'default-spec-id': options.spec['spec-id'],
    'partition-specs': [options.spec],
    'last-partition-id': Math.max(999, ...options.spec.fields.map((f) => f['field-id'])),
    'default-sort-order-id': sortOrder['order-id'],
    'sort-orders': [sortOrder],
    properties: { ...options.properties },
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
    refs: {},
  };
}

export function maxFieldId(schema: { readonly fields: IcebergSchema['fields'] }): number {
  let max = 0;
  const visit = (fields: IcebergSchema['fields']): void => {
    for (const f of fields) {
      max = Math.max(max, f.id);
      const t = f.type;
      if (typeof t === 'object' && t.type === 'list') max = Math.max(max, t['element-id']);
      if (typeof t === 'object' && t.type === 'struct') visit(t.fields);
    }
  };
  visit(schema.fields);
  return max;
}

/** Throws COMMIT_CONFLICT if a requirement does not hold against `m` (null: the table does not exist). */
export function checkRequirements(m: TableMetadata | null, requirements: readonly TableRequirement[]): void {
  const fail = (why: string): never => {
    throw new LakeError('COMMIT_CONFLICT', `requirement failed: ${why}`);
  };
  for (const r of requirements) {
    if (r.type === 'assert-create') {
      if (m !== null) fail('table already exists');
      continue;
    }
    if (m === null) return fail('table does not exist');
    switch (r.type) {
      case 'assert-table-uuid':
        if (m['table-uuid'] !== r.uuid) fail('table uuid changed');
        break;
      case 'assert-ref-snapshot-id': {
        const have = m.refs[r.ref]?.['snapshot-id'] ?? null;
        if (have !== r['snapshot-id']) fail(`ref ${r.ref} is at ${String(have)}, expected ${String(r['snapshot-id'])}`);
        break;
      }
      case 'assert-last-assigned-field-id':
        if (m['last-column-id'] !== r['last-assigned-field-id']) fail('last assigned field id changed');
        break;
      case 'assert-current-schema-id':
        if (m['current-schema-id'] !== r['current-schema-id']) fail('current schema changed');
        break;
      case 'assert-last-assigned-partition-id':
        if (m['last-partition-id'] !== r['last-assigned-partition-id']) fail('last partition id changed');
        break;
      case 'assert-default-spec-id':
        if (m['default-spec-id'] !== r['default-spec-id']) fail('default spec changed');
        break;
      case 'assert-default-sort-order-id':
        if (m['default-sort-order-id'] !== r['default-sort-order-id']) fail('default sort order changed');
        break;
    }
  }
}

/**
 * Apply updates in order, as a catalog does on commit. `metadataLocation` is
 * the file the base metadata was read from (it joins the metadata log).
 */
export function applyUpdates(
  base: TableMetadata,
  updates: readonly TableUpdate[],
  nowMs: number,
  baseLocation: string | null,
): TableMetadata {
  let m: TableMetadata = { ...base };
  let lastAddedSchema: number | undefined;
  let lastAddedSpec: number | undefined;
  const newSnapshots: Snapshot[] = [];
  for (const u of updates) {
    switch (u.action) {
      case 'assign-uuid':
        m = { ...m, 'table-uuid': u.uuid };
        break;
      case 'upgrade-format-version':
        break;
      case 'add-schema': {
        const id = Math.max(-1, ...m.schemas.map((s) => s['schema-id'])) + 1;
        const existing = m.schemas.find((s) => sameFields(s, u.schema));
        if (existing !== undefined) {
          lastAddedSchema = existing['schema-id'];
          break;
        }
        const schema = { ...u.schema, 'schema-id': id };
        m = {
          ...m,
          schemas: [...m.schemas, schema],
          'last-column-id': Math.max(m['last-column-id'], u['last-column-id'] ?? 0, maxFieldId(schema)),
        };
        lastAddedSchema = id;
        break;
      }
      case 'set-current-schema': {
        const id = u['schema-id'] === -1 ? lastAddedSchema : u['schema-id'];
        if (id === undefined || !m.schemas.some((s) => s['schema-id'] === id)) {
          throw new LakeError('COMMIT_CONFLICT', `unknown schema ${u['schema-id']}`);
        }
        m = { ...m, 'current-schema-id': id };
        break;
      }
      case 'add-spec': {
        const id = Math.max(-1, ...m['partition-specs'].map((s) => s['spec-id'])) + 1;
        const spec = { ...u.spec, 'spec-id': id };
        m = {
          ...m,
          'partition-specs': [...m['partition-specs'], spec],
          'last-partition-id': Math.max(m['last-partition-id'], ...spec.fields.map((f) => f['field-id'])),
        };
        lastAddedSpec = id;
        break;
      }
      case 'set-default-spec': {
        const id = u['spec-id'] === -1 ? lastAddedSpec : u['spec-id'];
        if (id === undefined) throw new LakeError('COMMIT_CONFLICT', 'no spec added');
        m = { ...m, 'default-spec-id': id };
        break;
      }
      case 'add-sort-order':
        if (!m['sort-orders'].some((o) => o['order-id'] === u['sort-order']['order-id'])) {
          m = { ...m, 'sort-orders': [...m['sort-orders'], u['sort-order']] };
        }
        break;
      case 'set-default-sort-order':
        m = { ...m, 'default-sort-order-id': u['sort-order-id'] };
        break;
      case 'add-snapshot': {
        const s = u.snapshot;
        if (m.snapshots.some((x) => x['snapshot-id'] === s['snapshot-id'])) {
          throw new LakeError('COMMIT_CONFLICT', `snapshot ${s['snapshot-id']} already exists`);
        }
        if (s['sequence-number'] <= m['last-sequence-number']) {
          throw new LakeError('COMMIT_CONFLICT', 'snapshot sequence number is not newer than the table');
        }
        m = { ...m, snapshots: [...m.snapshots, s], 'last-sequence-number': s['sequence-number'] };
        newSnapshots.push(s);
        break;
      }
      case 'set-snapshot-ref': {
        const { action: _a, 'ref-name': name, ...ref } = u;
        if (snapshotById(m, ref['snapshot-id']) === undefined) {
          throw new LakeError('COMMIT_CONFLICT', `ref to unknown snapshot ${ref['snapshot-id']}`);
        }
        m = { ...m, refs: { ...m.refs, [name]: ref } };
        if (name === 'main') {
          const added = newSnapshots.find((s) => s['snapshot-id'] === ref['snapshot-id']);
          m = {
            ...m,
            'current-snapshot-id': ref['snapshot-id'],
            'snapshot-log': [
              ...m['snapshot-log'],
              // In order (Java checks it): a ref moved to an older snapshot is logged now, never before the last entry.
              { 'timestamp-ms': added?.['timestamp-ms'] ?? Math.max(nowMs, m['snapshot-log'].at(-1)?.['timestamp-ms'] ?? 0), 'snapshot-id': ref['snapshot-id'] },
            ],
          };
        }
        break;
      }
      case 'remove-snapshots': {
        const gone = new Set(u['snapshot-ids']);
        // Refs to removed snapshots go too, as in Java and pyiceberg (a tag another
        // engine set meanwhile): a ref to a missing snapshot makes Java refuse the table.
        const refs = Object.fromEntries(Object.entries(m.refs).filter(([, r]) => !gone.has(r['snapshot-id'])));
        m = {
          ...m,
          snapshots: m.snapshots.filter((s) => !gone.has(s['snapshot-id'])),
          'snapshot-log': m['snapshot-log'].filter((e) => !gone.has(e['snapshot-id'])),
          refs,
        };
        if (refs['main'] === undefined) {
          const { 'current-snapshot-id': _c, ...rest } = m;
          m = rest;
        }
        // Statistics of removed snapshots go with them (as Iceberg's Java implementation does).
        const stats = m as StatisticsHolder;
        const ids = new Set([...gone].map(String));
        if (stats.statistics !== undefined) m = { ...m, statistics: stats.statistics.filter((e) => !ids.has(String(e['snapshot-id']))) } as TableMetadata;
        if (stats['partition-statistics'] !== undefined) {
          m = { ...m, 'partition-statistics': stats['partition-statistics'].filter((e) => !ids.has(String(e['snapshot-id']))) } as TableMetadata;
        }
        break;
      }
      case 'remove-snapshot-ref': {
        const refs = { ...m.refs };
        delete refs[u['ref-name']];
        m = { ...m, refs };
        if (u['ref-name'] === 'main') {
          const { 'current-snapshot-id': _c, ...rest } = m;
          m = rest;
        }
        break;
      }
      case 'set-location':
        m = { ...m, location: u.location };
        break;
      case 'set-properties':
        m = { ...m, properties: { ...m.properties, ...u.updates } };
        break;
      case 'remove-properties': {
        const props = { ...m.properties };
        for (const k of u.removals) delete props[k];
        m = { ...m, properties: props };
        break;
      }
    }
  }
  const metadataLog =
    baseLocation === null
      ? m['metadata-log']
      : [...m['metadata-log'], { 'timestamp-ms': base['last-updated-ms'], 'metadata-file': baseLocation }];
  const keep = Number(m.properties['write.metadata.previous-versions-max'] ?? '100');
  // Never before an entry of either log: Java refuses to load metadata whose
  // last-updated-ms is over a minute older ("Invalid update timestamp"), which a
  // writer with a slow clock (another machine) would produce.
  const logged = [base['last-updated-ms'], ...m['snapshot-log'].map((e) => e['timestamp-ms'])];
  return { ...m, 'last-updated-ms': Math.max(nowMs, ...logged), 'metadata-log': metadataLog.slice(-keep) };
}

function sameFields(a: IcebergSchema, b: IcebergSchema): boolean {
  return stringifyJson(a.fields) === stringifyJson(b.fields);
}

// ---------- (de)serialization ----------

export function serializeTableMetadata(m: TableMetadata): string {
  return stringifyJson(m, 2);
}

/** Parse metadata JSON; every 64-bit id becomes a bigint, whatever its size. */
export function parseTableMetadata(text: string): TableMetadata {
  let raw: Record<string, unknown>;
  try {
    raw = parseJson(text) as Record<string, unknown>;
  } catch (e) {
    throw new LakeError('CORRUPT_METADATA', 'table metadata is not valid JSON', { cause: e });
  }
  if (raw['format-version'] !== 2) {
    throw new LakeError('CORRUPT_METADATA', `unsupported format version ${String(raw['format-version'])}`);
  }
  return normalizeMetadata(raw);
}

/** Numbers to bigints where the spec says long; tolerate -1 as "no current snapshot". */
export function normalizeMetadata(raw: Record<string, unknown>): TableMetadata {
  const snapshots = ((raw['snapshots'] as Record<string, unknown>[] | undefined) ?? []).map(normalizeSnapshot);
  const refsRaw = (raw['refs'] as Record<string, Record<string, unknown>> | undefined) ?? {};
  const refs: Record<string, SnapshotRef> = {};
  for (const [name, r] of Object.entries(refsRaw)) {
    refs[name] = { ...(r as unknown as SnapshotRef), 'snapshot-id': toBigInt(r['snapshot-id'], 'ref snapshot id') };
  }
  let current: bigint | undefined =
    raw['current-snapshot-id'] === undefined || raw['current-snapshot-id'] === null
      ? undefined
      : toBigInt(raw['current-snapshot-id'], 'current-snapshot-id');
  if (current === -1n) current = undefined;
  if (current !== undefined && refs['main'] === undefined) refs['main'] = { 'snapshot-id': current, type: 'branch' };
  const { 'current-snapshot-id': _drop, ...rest } = raw;
  const m = {
    ...(rest as unknown as TableMetadata),
    'last-sequence-number': toBigInt(raw['last-sequence-number'] ?? 0, 'last-sequence-number'),
    snapshots,
    refs,
    'snapshot-log': ((raw['snapshot-log'] as Record<string, unknown>[] | undefined) ?? []).map((e) => ({
      'timestamp-ms': Number(e['timestamp-ms']),
      'snapshot-id': toBigInt(e['snapshot-id'], 'snapshot-log id'),
    })),
    'metadata-log': (raw['metadata-log'] as TableMetadata['metadata-log'] | undefined) ?? [],
    properties: (raw['properties'] as Record<string, string> | undefined) ?? {},
    'last-updated-ms': Number(raw['last-updated-ms']),
  };
  return current === undefined ? m : { ...m, 'current-snapshot-id': current };
}

function normalizeSnapshot(s: Record<string, unknown>): Snapshot {
  const out: Record<string, unknown> = {
    ...s,
    'snapshot-id': toBigInt(s['snapshot-id'], 'snapshot-id'),
    'sequence-number': toBigInt(s['sequence-number'] ?? 0, 'sequence-number'),
    'timestamp-ms': Number(s['timestamp-ms']),
  };
  if (s['parent-snapshot-id'] !== undefined && s['parent-snapshot-id'] !== null) {
    out['parent-snapshot-id'] = toBigInt(s['parent-snapshot-id'], 'parent-snapshot-id');
  } else delete out['parent-snapshot-id'];
  return out as unknown as Snapshot;
}
