// Temporary directories for tests, removed when the test process exits (passed or failed), so
// repeated runs do not pile repositories and state directories up in /tmp.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const made = new Set<string>();
let hooked = false;

/** A new empty directory under the system's temp directory, named `<prefix>XXXXXX`. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  made.add(dir);
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const d of made) {
        try { rmSync(d, { recursive: true, force: true }); } catch { /* still in use by a child: leave it */ }
      }
    });
  }
  return dir;
}
