import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LakeEnv } from './lake.ts';
import { ensureMavenJars, MAVEN_SETUP_TIMEOUT_MS, requireTool } from './maven.ts';
import { stopProcess } from './processes.ts';

/**
 * Apache Iceberg's Java reader (iceberg-data over iceberg-parquet, what Spark,
 * Flink and Trino build on) as a long-lived process: test/support/iceberg-java/
 * ReadTable.java, compiled once into .cache/iceberg-java against the jars of
 * its pom (resolved by Maven like the REST fixture's). Tables are opened by
 * their metadata file, so no catalog is involved.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const sourceDir = join(root, 'test/support/iceberg-java');
const pom = join(sourceDir, 'pom.xml');
const source = join(sourceDir, 'ReadTable.java');
const cacheDir = join(root, '.cache/iceberg-java');
const WHAT = 'the Iceberg Java reader';

export const ICEBERG_JAVA_SETUP_TIMEOUT_MS = MAVEN_SETUP_TIMEOUT_MS;

/** The classpath (compiled reader and its jars); resolves and compiles on first use. */
export function ensureIcebergJavaClasspath(): string {
  const lib = ensureMavenJars(pom, cacheDir, WHAT);
  requireTool('javac', ['-version'], 'a Java 17 JDK (Debian: openjdk-17-jdk-headless)', WHAT);
  const key = createHash('sha256').update(readFileSync(pom)).update(readFileSync(source)).digest('hex').slice(0, 12);
  const classes = join(cacheDir, `classes-${key}`);
  if (!existsSync(join(classes, '.complete'))) {
    mkdirSync(cacheDir, { recursive: true });
    const tmp = mkdtempSync(join(cacheDir, 'tmp-'));
    try {
      execFileSync('javac', ['-d', tmp, '-cp', `${lib}/*`, source], { stdio: ['ignore', 'pipe', 'pipe'] });
      writeFileSync(join(tmp, '.complete'), '');
      try {
        renameSync(tmp, classes);
      } catch (e) {
        if (!existsSync(join(classes, '.complete'))) throw e;
      }
    } catch (e) {
      const out = e as { stdout?: Buffer; stderr?: Buffer };
      throw new Error(`javac could not compile ${source}:\n${String(out.stdout ?? '')}${String(out.stderr ?? e)}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return `${classes}:${lib}/*`;
}

export interface JavaReadRequest {
  /** A label for the table in errors. */
  readonly name: string;
  /** The table's metadata file (file:// URI). */
  readonly metadata: string;
  /** Time travel to this snapshot. */
  readonly snapshot?: bigint;
  /** Only the rows appended after this snapshot (an incremental read; replace snapshots are skipped). */
  readonly appendsAfter?: bigint;
  /** Only rows whose column equals the value (null: is null); Java prunes partitions and files by it. */
  readonly filter?: readonly [string, string | null];
}

export interface JavaSnapshot {
  readonly id: string;
  readonly parent: string | null;
  readonly sequenceNumber: number;
  readonly operation: string;
  readonly summary: Record<string, string>;
}

/** What Java read: 64-bit integers as text, binary as hex, timestamps as Python's isoformat (as pyicebergScan prints them). */
export interface JavaScan {
  readonly name: string;
  readonly rows: Record<string, unknown>[];
  readonly snapshots: JavaSnapshot[];
  readonly current: string | null;
  readonly schema: [number, string, string, boolean][];
  readonly spec: [string, string][];
  /** Rows Java read from each metadata table (entries, files, manifests, partitions, ...), every field decoded; empty for filtered and time-travel reads. */
  readonly metadataTables: Record<string, number>;
  /** The partition values of the partitions metadata table. */
  readonly partitions: Record<string, unknown>[];
  /** Row groups of each data file in the files metadata table, from its Parquet footer. */
  readonly rowGroups: number[];
}

export interface JavaReader {
  /** Scan the tables in order; throws with Java's stack trace when it refused one. */
  read(requests: readonly JavaReadRequest[]): Promise<JavaScan[]>;
  stop(): Promise<void>;
}

export function startJavaReader(): JavaReader {
  const classpath = ensureIcebergJavaClasspath();
  const child = spawn('java', ['-Xmx512m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', classpath, 'ReadTable'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start java');
  // A crashed test run must not leave a JVM behind.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  const waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.resolve(line));
  child.once('exit', (code, signal) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`the Java reader exited (${code ?? signal}):\n${stderr}`));
  });
  // Requests are answered in order, one line each; a chain keeps concurrent read() calls from interleaving.
  let chain: Promise<unknown> = Promise.resolve();
  const readOne = (req: JavaReadRequest): Promise<string> =>
    new Promise((resolveLine, reject) => {
      waiting.push({ resolve: resolveLine, reject });
      child.stdin.write(`${JSON.stringify({ ...req, snapshot: req.snapshot?.toString(), appendsAfter: req.appendsAfter?.toString() })}\n`);
    });
  return {
    read(requests) {
      const run = chain.then(async () => {
        const out: JavaScan[] = [];
        for (const req of requests) {
          const res = JSON.parse(await readOne(req)) as JavaScan & { error?: string };
          if (res.error !== undefined) throw new Error(`Java Iceberg could not read ${req.name} (${req.metadata}):\n${res.error}`);
          out.push(res);
        }
        return out;
      });
      chain = run.catch(() => {});
      return run;
    },
    async stop() {
      child.stdin.end();
      await stopProcess(child, pid);
      process.removeListener('exit', killOnExit);
    },
  };
}

/** A request for a lake table at its current metadata file. */
export async function javaRequest(
  env: LakeEnv,
  table: string,
  options: { snapshot?: bigint; appendsAfter?: bigint; filter?: readonly [string, string | null] } = {},
): Promise<JavaReadRequest> {
  const loaded = await env.catalog.loadTable({ namespace: ['lakesync'], name: table });
  if (loaded === null) throw new Error(`no table ${table}`);
  return { name: table, metadata: loaded.metadataLocation, ...options };
}
