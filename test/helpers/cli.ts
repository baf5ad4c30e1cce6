// Runs the built CLI (node bin/zt-gateway.js) asynchronously, so that a test can serve something the CLI
// fetches (and the cases of a file can run concurrently); bounded by a timeout.
import { spawn } from 'node:child_process';
import { bin, root } from './build.ts';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `env`: variables for the CLI besides PATH (nothing else of the test's environment is passed on). */
export function cli(args: string[], timeoutMs = 30_000, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { PATH: process.env.PATH, ...env }, timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
