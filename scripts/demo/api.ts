// The demo talks to the controller only through its HTTP API, as a user's script would: a bearer
// token, JSON bodies, and sessions followed by polling GET /sessions/{id}.
import { setTimeout as sleep } from 'node:timers/promises';

export interface AccountResult {
  accountId: string; accountName: string; state: 'success' | 'warning' | 'failed' | 'skipped'; bytes: number;
  restorePointId?: string; restorePointIds?: string[]; message?: string; bytesRead?: number; worker?: string; counts?: Record<string, number>;
}
export interface Session {
  id: string; type: string; state: 'running' | 'success' | 'warning' | 'failed'; error: string | null;
  accounts: AccountResult[]; log?: Array<{ at: string; level: string; message: string }>;
}
export interface RestorePoint { id: string; accountId: string; accountName: string; kind: string; size: number; databaseName: string | null; createdAt: string }

export class ControllerApi {
  readonly url: string;
  readonly #token: string;

  constructor(url: string, token: string) {
    this.url = url;
    this.#token = token;
  }

  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.#token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) {
      let said = text.slice(0, 300);
      try {
        const e = (JSON.parse(text) as { error: { code: string; message: string } }).error;
        said = `${e.code}: ${e.message.replace(/\s*\n\s*/g, '; ')}`;
      } catch { /* not the API's error body */ }
      throw new Error(`${method} ${path} answered ${res.status}: ${said}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Polls a session until it ends, handing each new log line to `onLog`. A session that ends in
   * any state other than success is an error naming what failed.
   */
  async follow(sessionId: string, what: string, onLog: (line: string) => void, timeoutMs = 15 * 60_000): Promise<Session> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      const s = await this.call<Session>('GET', `/sessions/${sessionId}`);
      const log = s.log ?? [];
      for (const l of log.slice(seen)) onLog(l.message);
      seen = log.length;
      if (s.state !== 'running') {
        if (s.state === 'success') return s;
        const failed = s.accounts.filter((a) => a.state === 'failed').map((a) => `${a.accountName}: ${a.message ?? 'failed'}`);
        throw new Error(`${what} ended ${s.state}: ${failed.length ? failed.join('; ') : s.error ?? 'no reason given'} (session ${s.id})`);
      }
      if (Date.now() > deadline) throw new Error(`${what} did not finish within ${Math.round(timeoutMs / 60_000)} minutes (session ${s.id})`);
      await sleep(300);
    }
  }
}
