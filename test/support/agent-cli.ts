// Runs the agent's command line (the development CLI under this Node) and collects its output.
import { spawn } from 'node:child_process';
import path from 'node:path';

export const AGENT_CLI = path.join(import.meta.dirname, '../../agent/cli.ts');

export function runAgentCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [AGENT_CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
