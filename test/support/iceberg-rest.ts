import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureMavenJars, MAVEN_SETUP_TIMEOUT_MS, requireTool } from './maven.ts';
import { stopProcess } from './processes.ts';

/**
 * Apache Iceberg's own REST catalog server (the test fixture behind the
 * apache/iceberg-rest-fixture image: a JdbcCatalog on SQLite), run from its
 * Maven Central jars. The jars are resolved once by Maven into
 * .cache/iceberg-rest/lib-<hash of the pom> (re-resolved when the pom
 * changes); Maven keeps its own download cache in ~/.m2. Needs `java` (17)
 * and `mvn` on the PATH.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixtureDir = join(root, 'test/support/iceberg-rest');
const pom = join(fixtureDir, 'pom.xml');
const launcher = join(fixtureDir, 'LoopbackRestServer.java');
const cacheDir = join(root, '.cache/iceberg-rest');
const WHAT = 'the Iceberg REST fixture';

/** Downloading the jars takes up to a few minutes on a fresh machine: give hooks that call this that long. */
export const ICEBERG_REST_SETUP_TIMEOUT_MS = MAVEN_SETUP_TIMEOUT_MS;

/** The directory of the server's jars; resolves them with Maven on first use. */
export function ensureIcebergRestJars(log: (line: string) => void = () => {}): string {
  return ensureMavenJars(pom, cacheDir, WHAT, log);
}

export interface IcebergRestServer {
  /** Base URI for REST clients (no /v1). */
  readonly uri: string;
  /** The warehouse directory on local disk. */
  readonly warehouse: string;
  /**
   * The warehouse as the server was given it, file:///...: table locations are
   * file:///... URIs under it, while metadata-location comes back in Hadoop's
   * spelling, file:/... (one slash).
   */
  readonly warehouseUri: string;
  readonly pid: number;
  /** Server log (Jetty and Iceberg), for failures. */
  readonly logFile: string;
  stop(): Promise<void>;
}

/** Start a fresh server (empty catalog) on 127.0.0.1 and a free port; resolves once it answers /v1/config. */
export async function startIcebergRest(): Promise<IcebergRestServer> {
  const lib = ensureIcebergRestJars();
  requireTool('java', ['-version'], 'a Java 17 runtime (Debian: openjdk-17-jdk-headless)', WHAT);
  const dir = mkdtempSync(join(tmpdir(), 'lakesync-iceberg-rest-'));
  const warehouse = join(dir, 'warehouse');
  mkdirSync(warehouse);
  const warehouseUri = pathToFileURL(warehouse).href;
  const logFile = join(dir, 'server.log');
  const child = spawn(
    'java',
    [
      '-Xmx512m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-cp',
      `${lib}/*`,
      launcher,
      warehouseUri,
      `jdbc:sqlite:file:${join(dir, 'catalog.db')}`,
    ],
    { stdio: ['ignore', 'pipe', openSync(logFile, 'a')] },
  );
  // A crashed test run must not leave a JVM behind.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start java');

  let port: number;
  try {
    port = await waitForPort(child, logFile, 60_000);
  } catch (e) {
    child.kill('SIGKILL');
    process.removeListener('exit', killOnExit);
    throw e;
  }
  const uri = `http://127.0.0.1:${port}`;
  const res = await fetch(`${uri}/v1/config`);
  if (res.status !== 200) throw new Error(`Iceberg REST fixture answered /v1/config with ${res.status}`);

  let stopped: Promise<void> | null = null;
  return {
    uri,
    warehouse,
    warehouseUri,
    pid,
    logFile,
    stop() {
      stopped ??= (async () => {
        await stopProcess(child, pid);
        process.removeListener('exit', killOnExit);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

function waitForPort(child: ChildProcess, logFile: string, timeoutMs: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    let out = '';
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-4000) : '';
      reject(new Error(`Iceberg REST fixture ${why}\n${out}\n${log}`));
    };
    const timer = setTimeout(() => fail(`did not start within ${timeoutMs} ms`), timeoutMs);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const m = /LISTENING (\d+)/.exec(out);
      if (m?.[1] !== undefined && !settled) {
        settled = true;
        clearTimeout(timer);
        child.stdout?.removeAllListeners('data');
        child.stdout?.resume(); // keep draining
        resolvePort(Number(m[1]));
      }
    });
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    child.once('error', (e) => fail(`could not start: ${e.message}`));
  });
}
