import { ensurePythonEnv } from './python.ts';

/** vitest globalSetup for the lake and AWS projects: the venv exists before any test file runs. */
export default function setup(): void {
  ensurePythonEnv((line) => process.stderr.write(`[python] ${line}\n`));
}
