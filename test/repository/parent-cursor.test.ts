// The parent cursor (pure): after chunks that match the parent, a new chunk's candidates are the
// old chunks at its place; rows cut out before it (the new stream runs behind) are covered; what
// lies past the parent's end has none; memory is bounded by dropping what lies behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ParentCursor, LOOKAHEAD } from '../../shared/repository/parent-cursor.ts';

const number = new Map<string, number>();
const id = (n: number) => { const b = createHash('sha256').update(`chunk ${n}`).digest(); number.set(b.toString('hex'), n); return b; };
const names = (ids: Buffer[]) => ids.map((b) => number.get(b.toString('hex')));

test('parent cursor: candidates follow the old stream through matches, cuts and the end', () => {
  const c = new ParentCursor();
  assert.ok(c.wants(65_536) >= 65_536 + LOOKAHEAD, 'nothing loaded yet: it wants the lookahead');
  for (let n = 0; n < 100; n++) c.add(id(n), 8192);
  c.end();
  assert.equal(c.wants(1 << 20), 0, 'the parent is read to its end');
  // Chunks 0-9 unchanged; chunk 10 lost a 250-byte row: its candidates are old 10 (and 11, within slack).
  for (let n = 0; n < 10; n++) c.known(id(n), 8192);
  assert.deepEqual(names(c.candidates(8192 - 250, 4)), [10, 11]);
  // The next chunk is old 11 again: the streams line up, though the new one is 250 bytes behind.
  c.known(id(11), 8192);
  // Old 12 changed and a cut point vanished: the new chunk spans old 12 and 13.
  assert.deepEqual(names(c.candidates(16_000, 4)), [12, 13]);
  // Without a match since, the cursor keeps moving by the new bytes.
  assert.deepEqual(names(c.candidates(8192, 4)).slice(0, 2), [13, 14]);
  // Far past the parent's end (rows appended), there are no candidates.
  for (let n = 16; n < 100; n++) c.known(id(n), 8192);
  assert.deepEqual(c.candidates(8192, 4), []);
});

test('parent cursor: a long object keeps only a window of the parent in memory', () => {
  const c = new ParentCursor();
  let loaded = 0;
  for (let n = 0; n < 200_000; n++) {
    while (c.wants(8192) > 0 && loaded < 200_000) c.add(id(loaded++), 8192);
    if (n % 3 === 0) assert.ok(c.candidates(8192, 4).length > 0);
    else c.known(id(n), 8192);
    assert.ok(loaded - n < (LOOKAHEAD + 3 * 65_536) / 8192 + 2, 'it loads only a lookahead ahead');
  }
  const held = (c as unknown as { chunks: unknown[]; first: number });
  assert.ok(held.chunks.length - held.first < 200 && held.chunks.length < 3000, `holds ${held.chunks.length} chunks`);
});
