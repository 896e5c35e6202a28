// The worker's structured log: pino, JSON lines on stderr (the VM's journal keeps them), every
// object through redact() and every message through redactString(), so a secret that slips into
// an error message still never reaches a log line.
import pino from 'pino';
import { redact, redactString } from '../../shared/protocol/redact.ts';

export type WorkerLog = pino.Logger;

export function workerLog(opts: { workerId: string; level?: string; destination?: pino.DestinationStream }): WorkerLog {
  return pino({
    level: opts.level ?? 'info',
    base: { workerId: opts.workerId, pid: process.pid },
    formatters: { log: (o) => redact(o) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? redactString(a) : a)) as Parameters<typeof method>);
      },
    },
  }, opts.destination ?? pino.destination({ fd: 2, sync: true }));
}
