// Progress of a running job as `progress` reply bodies: a rate over the recent window, an ETA when
// the total is known, and at most one report per interval (queue transactions cost money). Pure:
// the caller passes the clock.

export interface ProgressSample {
  phase: string;
  bytes: number;
  objects: number;
  bytesTotal?: number;
  objectsTotal?: number;
  bytesStored?: number;
}

export interface ProgressReport extends ProgressSample {
  rate: number;
  etaSeconds: number | null;
}

/** How far back the rate looks: long enough to smooth bursts, short enough to follow changes. */
const RATE_WINDOW_MS = 30_000;

export class ProgressTracker {
  private readonly intervalMs: number;
  private lastSent = -Infinity;
  private history: Array<{ at: number; bytes: number }> = [];
  private latest: ProgressSample | undefined;

  constructor(intervalMs: number) {
    this.intervalMs = intervalMs;
  }

  /** Records a sample; returns a report when one is due (the first sample is always due). */
  update(sample: ProgressSample, now: number): ProgressReport | undefined {
    this.latest = sample;
    this.history.push({ at: now, bytes: sample.bytes });
    while (this.history.length > 2 && now - this.history[1]!.at > RATE_WINDOW_MS) this.history.shift();
    if (now - this.lastSent < this.intervalMs) return undefined;
    this.lastSent = now;
    return this.report(now);
  }

  report(now: number): ProgressReport | undefined {
    const s = this.latest;
    if (!s) return undefined;
    const first = this.history[0]!;
    const secs = (now - first.at) / 1000;
    const rate = secs > 0 ? Math.max(0, (s.bytes - first.bytes) / secs) : 0;
    const left = s.bytesTotal !== undefined ? Math.max(0, s.bytesTotal - s.bytes) : undefined;
    const etaSeconds = left === undefined || rate <= 0 ? null : Math.round(left / rate);
    return { ...s, rate: Math.round(rate * 10) / 10, etaSeconds };
  }
}
