// Waiting in tests for something another process or timer makes true: polls, never asserts time.
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls f every `everyMs` until it returns a truthy value (returned), or fails after `ms` naming what it waited for. */
export async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms = 120_000, everyMs = 200): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
