// Terminal output: results on stdout, progress and messages on stderr (a bar only on a TTY).
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total?: number, info?: string): void;
  stop(): void;
}

export function progressBar(label: string, unit: 'bytes' | 'items' = 'bytes'): Progress {
  if (!process.stderr.isTTY) return { update() { /* no bar off a terminal */ }, stop() { /* nothing */ } };
  const fmt = unit === 'bytes'
    ? (v: number) => `${(v / 1048576).toFixed(1)} MiB`
    : (v: number) => String(v);
  const bar = new cliProgress.SingleBar({
    stream: process.stderr, hideCursor: true, clearOnComplete: true,
    format: `${label} [{bar}] {doneFmt}{totalFmt} {info}`,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(done, total, info = '') {
      if (!started) { bar.start(total ?? 0, 0, { doneFmt: '', totalFmt: '', info: '' }); started = true; }
      if (total !== undefined) bar.setTotal(total);
      bar.update(done, { doneFmt: fmt(done), totalFmt: total ? ` / ${fmt(total)}` : '', info });
    },
    stop() { if (started) bar.stop(); },
  };
}

export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export function say(line: string): void {
  process.stderr.write(line + '\n');
}
