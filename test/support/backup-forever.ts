// Test helper process: opens the repository at argv[2] (unencrypted) and writes an endless
// pseudo-random object into a backup, so a test can SIGKILL it mid-write.
import { createHash } from 'node:crypto';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { startBackup } from '../../shared/repository/backup-writer.ts';

const repo = await Repository.open(await openStore(process.argv[2]!));
const w = await startBackup(repo, { engine: 'test', database: 'forever', source: 'test' });
await w.putObject('small', 'test', Buffer.from('committed before the crash? no: nothing is committed'));
const out = w.createObject('big', 'test');
let n = 0;
for (;;) {
  const block = Buffer.alloc(1 << 20);
  for (let o = 0; o < block.length; o += 32) createHash('sha256').update(`${n}:${o}`).digest().copy(block, o);
  n++;
  if (!out.write(block)) await new Promise((r) => out.once('drain', r));
  if (n === 8) process.stdout.write('writing\n');
}
