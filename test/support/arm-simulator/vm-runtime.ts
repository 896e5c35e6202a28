// THE ARM SIMULATOR'S VIRTUAL MACHINES — a test stand-in, not Azure. A simulated VM is a sandbox
// directory; its Run Command scripts REALLY run there as bash processes with the environment of a
// fresh Ubuntu VM (no Node.js, nothing of the project on PATH). Each script gets a process group of
// its own, so whatever it leaves running in the background (`nohup ./agent worker &`) keeps
// running after the command returns, and deallocate/delete/crash kill every group of the VM.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, readdirSync, readlinkSync, rmSync, openSync, closeSync, statSync } from 'node:fs';
import path from 'node:path';

/** Run Command keeps only the last 4,096 bytes of each output stream. */
export const OUTPUT_LIMIT = 4096;
/** PATH of a fresh Ubuntu 22.04 root shell. */
export const UBUNTU_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunParameter { name?: string; value?: string }

export interface ScriptRun {
  id: number;
  kind: 'action' | 'managed';
  /** the managed run command's name; null for the action Run Command */
  name: string | null;
  script: string;
  /** non-protected parameters as sent */
  parameters: RunParameter[];
  /** names only: protected values are never kept in the history */
  protectedParameterNames: string[];
  startTime: Date;
  endTime: Date | null;
  exitCode: number | null;
  signal: string | null;
  done: boolean;
  pgid: number;
  stdoutFile: string;
  stderrFile: string;
}

export interface VmProcess { pid: number; pgid: number; command: string }

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Shadows the machine's own Node.js (and its npm): a fresh VM has none.
const MISSING = (cmd: string) => `#!/bin/sh\necho "${cmd}: command not found" >&2\nexit 127\n`;

/** Last `limit` bytes of a file, as text. */
export function tailFile(file: string, limit = OUTPUT_LIMIT): string {
  let buf: Buffer;
  try { buf = readFileSync(file); } catch { return ''; }
  return buf.subarray(Math.max(0, buf.length - limit)).toString('utf8');
}

export class VmSandbox {
  /** the VM's working directory (what `cd` lands on for its scripts) */
  readonly root: string;
  readonly home: string;
  readonly bin: string;
  readonly #runsDir: string;
  readonly #dir: string;
  readonly #groups = new Set<number>();
  readonly runs: ScriptRun[] = [];

  constructor(dir: string) {
    this.#dir = dir;
    this.root = path.join(dir, 'sandbox');
    this.home = path.join(this.root, 'home');
    this.bin = path.join(this.root, 'bin');
    this.#runsDir = path.join(dir, 'runcommand');
    for (const d of [this.home, this.bin, this.#runsDir]) mkdirSync(d, { recursive: true });
    for (const cmd of ['node', 'npm', 'npx', 'corepack']) writeFileSync(path.join(this.bin, cmd), MISSING(cmd), { mode: 0o755 });
  }

  /** The environment a script sees: a fresh root shell, plus the run's named parameters. */
  env(vars: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: `${this.bin}:${UBUNTU_PATH}`, HOME: this.home, USER: 'root', LOGNAME: 'root', SHELL: '/bin/bash',
      LANG: 'C.UTF-8', PWD: this.root, ...vars,
    };
  }

  /**
   * Starts `script` with bash in the sandbox. Named parameters (and protected ones) become
   * environment variables as on Azure's Linux agent; unnamed ones are positional arguments.
   * stdout/stderr go to files (as the Run Command extension does), so a background process that
   * inherits them does not keep the command from completing.
   */
  run(kind: ScriptRun['kind'], name: string | null, script: string, parameters: RunParameter[], protectedParameters: RunParameter[], onExit: (r: ScriptRun) => void): ScriptRun {
    const vars: Record<string, string> = {};
    const positional: string[] = [];
    for (const p of [...parameters, ...protectedParameters]) {
      if (p.name === undefined || p.name === '') { positional.push(String(p.value ?? '')); continue; }
      if (!ENV_NAME.test(p.name)) throw new Error(`parameter name '${p.name}' is not a valid environment variable name`);
      vars[p.name] = String(p.value ?? '');
    }
    const id = this.runs.length + 1;
    const scriptFile = path.join(this.#runsDir, `script-${id}.sh`);
    writeFileSync(scriptFile, script, { mode: 0o700 });
    const stdoutFile = path.join(this.#runsDir, `stdout-${id}.txt`);
    const stderrFile = path.join(this.#runsDir, `stderr-${id}.txt`);
    const out = openSync(stdoutFile, 'w');
    const err = openSync(stderrFile, 'w');
    const run: ScriptRun = {
      id, kind, name, script, parameters: parameters.map((p) => ({ ...p })), protectedParameterNames: protectedParameters.map((p) => p.name ?? ''),
      startTime: new Date(), endTime: null, exitCode: null, signal: null, done: false, pgid: 0, stdoutFile, stderrFile,
    };
    this.runs.push(run);
    const finish = (code: number | null, signal: string | null) => {
      if (run.done) return;
      run.done = true;
      run.endTime = new Date();
      run.exitCode = code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : null);
      run.signal = signal;
      onExit(run);
    };
    try {
      // detached: a new session and process group, the whole tree killable with kill(-pgid)
      const child = spawn('/bin/bash', [scriptFile, ...positional], { cwd: this.root, env: this.env(vars), detached: true, stdio: ['ignore', out, err] });
      run.pgid = child.pid ?? 0;
      if (run.pgid) this.#groups.add(run.pgid);
      child.once('error', () => finish(127, null));
      child.once('exit', (code, signal) => finish(code, signal));
      child.unref();
    } finally {
      closeSync(out);
      closeSync(err);
    }
    return run;
  }

  /** Every *.log file in the sandbox (relative path → text), e.g. a worker's log. */
  logFiles(): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (dir: string) => {
      let entries;
      try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.log')) out[path.relative(this.root, p)] = readFileSync(p, 'utf8');
      }
    };
    walk(this.root);
    return out;
  }

  stdout(run: ScriptRun): string { return tailFile(run.stdoutFile); }
  stderr(run: ScriptRun): string { return tailFile(run.stderrFile); }

  /** Live processes of this VM: in one of its process groups, or working inside its sandbox. */
  processes(): VmProcess[] {
    const found: VmProcess[] = [];
    let pids: string[];
    try { pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)); } catch { return found; }
    for (const p of pids) {
      const pid = Number(p);
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (fields[0] === 'Z') continue; // a zombie is already dead
        const pgid = Number(fields[2]);
        let inside = this.#groups.has(pgid);
        if (!inside) {
          try { inside = (readlinkSync(`/proc/${p}/cwd`) + '/').startsWith(this.root + '/'); } catch { /* not ours to read */ }
        }
        if (!inside) continue;
        const command = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
        found.push({ pid, pgid, command });
      } catch { /* exited meanwhile */ }
    }
    return found;
  }

  /** Kills every process of the VM (power off, deallocate, delete, crash). */
  killAll(): void {
    for (const g of this.#groups) { try { process.kill(-g, 'SIGKILL'); } catch { /* already gone */ } }
    // a process that left its group with setsid but still works in the sandbox
    for (const p of this.processes()) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ } }
  }

  /** Kills one run's process group (a managed run command deleted while it runs). */
  kill(run: ScriptRun): void {
    if (run.pgid) { try { process.kill(-run.pgid, 'SIGKILL'); } catch { /* already gone */ } }
  }

  remove(): void {
    this.killAll();
    try { if (statSync(this.#dir).isDirectory()) rmSync(this.#dir, { recursive: true, force: true }); } catch { /* already gone */ }
  }
}
