import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project-local Python virtualenv with the readers we did not write
 * (pyarrow, pyiceberg, DuckDB, fastavro) and the AWS emulator (moto). Created
 * from the package registry on first use; re-created when
 * test/python/requirements.txt changes (a hash is kept inside the venv).
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const requirements = join(root, 'test/python/requirements.txt');
export const VENV = join(root, '.venv');
export const PYTHON = join(VENV, 'bin/python');

export function ensurePythonEnv(log: (line: string) => void = () => {}): string {
  const want = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  const stampFile = join(VENV, '.lakesync-requirements');
  if (existsSync(PYTHON) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === want) return PYTHON;
  log(`creating ${VENV} from test/python/requirements.txt (about 30 s)`);
  rmSync(VENV, { recursive: true, force: true });
  mkdirSync(VENV, { recursive: true });
  execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(PYTHON, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements], {
    stdio: 'inherit',
  });
  writeFileSync(stampFile, want);
  return PYTHON;
}

export interface PythonResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a Python snippet in the venv; stdin is passed as JSON in `sys.argv[1]` when given. Throws on a non-zero exit. */
export function runPython(code: string, args: readonly string[] = [], env: Record<string, string> = {}): PythonResult {
  const r = spawnSync(PYTHON, ['-c', code, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(`python failed (${r.status ?? r.signal}):\n${r.stderr}\n${r.stdout}`);
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Run a Python snippet that prints one JSON document, and parse it. */
export function pythonJson<T>(code: string, args: readonly string[] = [], env: Record<string, string> = {}): T {
  return JSON.parse(runPython(code, args, env).stdout) as T;
}

/**
 * Python: `conv(v)` turns a pyarrow row value into JSON that keeps 64-bit
 * integers exact (as strings), bytes as hex and timestamps as ISO text.
 * Prepend it to a snippet that prints rows.
 */
export const PY_CONV = `
def conv(v):
    if isinstance(v, bytes): return v.hex()
    if isinstance(v, int) and not isinstance(v, bool): return str(v)
    if isinstance(v, list): return [conv(x) for x in v]
    if hasattr(v, 'isoformat'): return v.isoformat()
    return v
`;
