import { spawn } from 'node:child_process';

/**
 * Starts a detached shell that waits for this process to die (even by SIGKILL) and then kills
 * `pid` and removes `dir`. Normal shutdown paths clean up earlier; this is the last resort so a
 * killed test run never leaves servers or temporary directories behind.
 */
export function reapOnDeath(pid: number, dir: string, signal = 'QUIT'): void {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -${signal} ${pid} 2>/dev/null; sleep 2; kill -9 ${pid} 2>/dev/null; rm -rf '${dir.replace(/'/g, "'\\''")}'`;
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
}
