import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { VENV } from './python.ts';
import { stopProcess } from './processes.ts';

/**
 * moto's stand-alone server (the AWS emulator, from the project venv) as a
 * child process on 127.0.0.1: S3, Glue and the rest over real HTTP, with
 * any credentials. One per test file; the port is the one the server picked
 * itself (-p 0), read from its start-up line, so parallel files never race
 * for a port.
 */
export const MOTO_SERVER = join(VENV, 'bin/moto_server');
export const MOTO_REGION = 'us-east-1';
export const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;

export interface MotoServer {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly pid: number;
  /** Everything the server printed, for failures. */
  log(): string;
  /** Forget every resource (moto's /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export interface MotoOptions {
  readonly timeoutMs?: number;
  /** With the CloudFormation resource types moto lacks and `cdk deploy` needs (test/support/moto_cfn.py). */
  readonly cloudFormation?: boolean;
}

export async function startMoto(options: MotoOptions | number = {}): Promise<MotoServer> {
  const { timeoutMs = 30_000, cloudFormation = false } = typeof options === 'number' ? { timeoutMs: options } : options;
  const [command, args] = cloudFormation ? [join(VENV, 'bin/python'), [join(import.meta.dirname, 'moto_cfn.py')]] : [MOTO_SERVER, []];
  const child = spawn(command, [...args, '-H', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Unbuffered, so the "Running on" line arrives at once.
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${MOTO_SERVER}`);
  // A crashed test run must not leave the server behind.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let output = '';
  const collect = (chunk: string): void => {
    // Keep the start and the tail: the request log grows with every call.
    output = output.length > 64_000 ? output.slice(0, 4_000) + '\n...\n' + output.slice(-32_000) + chunk : output + chunk;
  };
  child.stdout.setEncoding('utf8').on('data', collect);
  child.stderr.setEncoding('utf8').on('data', collect);

  let endpoint: string;
  try {
    endpoint = await waitForListening(child, () => output, timeoutMs);
    await waitForAnswer(endpoint, timeoutMs);
  } catch (e) {
    child.kill('SIGKILL');
    process.removeListener('exit', killOnExit);
    throw e;
  }

  let stopped: Promise<void> | null = null;
  return {
    endpoint,
    pid,
    log: () => output,
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`moto reset answered ${res.status}`);
    },
    stop() {
      stopped ??= (async () => {
        await stopProcess(child, pid);
        process.removeListener('exit', killOnExit);
      })();
      return stopped;
    },
  };
}

/** Client config for AWS SDK v3 clients (S3Client, GlueClient) talking to the server. */
export function motoClientConfig(server: Pick<MotoServer, 'endpoint'>): {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  forcePathStyle: boolean;
  maxAttempts: number;
} {
  return {
    endpoint: server.endpoint,
    region: MOTO_REGION,
    credentials: { ...MOTO_CREDENTIALS },
    // Virtual-host addressing would need <bucket>.127.0.0.1 to resolve.
    forcePathStyle: true,
    // A failing emulator call should fail the test, not be retried into a timeout.
    maxAttempts: 1,
  };
}

/** pyiceberg catalog properties for GlueCatalog + S3 FileIO on the server. */
export function motoPyicebergProperties(server: Pick<MotoServer, 'endpoint'>): Record<string, string> {
  return {
    'glue.endpoint': server.endpoint,
    'glue.region': MOTO_REGION,
    'glue.access-key-id': MOTO_CREDENTIALS.accessKeyId,
    'glue.secret-access-key': MOTO_CREDENTIALS.secretAccessKey,
    's3.endpoint': server.endpoint,
    's3.region': MOTO_REGION,
    's3.access-key-id': MOTO_CREDENTIALS.accessKeyId,
    's3.secret-access-key': MOTO_CREDENTIALS.secretAccessKey,
    's3.force-virtual-addressing': 'false',
  };
}

function waitForListening(child: ChildProcess, output: () => string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(poll);
      f();
    };
    const fail = (why: string): void => done(() => reject(new Error(`moto_server ${why}\n${output()}`)));
    const timer = setTimeout(() => fail(`did not start within ${timeoutMs} ms`), timeoutMs);
    const poll = setInterval(() => {
      const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(output());
      if (m?.[1] !== undefined) {
        const url = m[1];
        done(() => resolve(url));
      }
    }, 20);
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    child.once('error', (e) => fail(`could not start: ${e.message}`));
  });
}

async function waitForAnswer(endpoint: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let why: string;
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      await res.arrayBuffer();
      if (res.ok) return;
      why = `status ${res.status}`;
    } catch (e) {
      why = String(e);
    }
    if (Date.now() > deadline) throw new Error(`moto_server at ${endpoint} does not answer: ${why}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
