// Frame compression: zstd frames carry their content size, which decompress() uses to size its
// output exactly; odd or foreign headers give undefined rather than a wrong size. Frames compress
// on worker threads, their memory moved there and back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { randomFillSync } from 'node:crypto';
import { compress, compressOwned, decompress, zstdContentSize, CODEC_NONE, CODEC_ZSTD } from '../../shared/repository/codec.ts';
import { compressionThreads, compressPool, zstdOptions } from '../../shared/repository/compress-pool.ts';

/** `n` bytes of COPY-like rows in memory the caller owns whole (compressOwned moves it); `seed` varies them. */
function rows(seed: number, n: number): Buffer {
  const b = Buffer.allocUnsafeSlow(n);
  for (let i = 0; i < n; i += 50) b.write(`${seed}\t${(i * 2654435761 % 1e9).toString(36)}\tstatus ${(i * seed) % 7}\tnote\n`.padEnd(50, ' '), i);
  return b;
}

/** Frames compressed on reused zstd streams so far, over all threads. */
async function reusedFrames(): Promise<number> {
  return (await compressPool().threadStatistics()).reduce((a, t) => a + t.reusedFrames, 0);
}

test('zstd frames record their content size, for every size class of the header field', async () => {
  for (const n of [100, 255, 256, 300, 65_535, 65_791, 65_792, 131_072, 1_000_000]) {
    const plain = Buffer.from('row\t' + 'x'.repeat(n - 4));
    const c = await compress(plain);
    assert.equal(c.codec, CODEC_ZSTD, `${n} bytes compress`);
    assert.equal(zstdContentSize(c.data), n, `header of a ${n}-byte frame`);
    const back = await decompress(c.codec, c.data, 16 * 1024 * 1024);
    assert.ok(back.equals(plain), `${n} bytes round-trip`);
    // Frames live on in read-ahead batches: the output must not pin a larger buffer.
    assert.ok(back.buffer.byteLength <= n + 64, `the ${n}-byte output holds no oversized buffer (${back.buffer.byteLength})`);
  }
  // A frame written without a pledged size (as zstd's streaming API does) has no size field.
  const streamed = await new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    zlib.createZstdCompress().on('data', (d: Buffer) => parts.push(d)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject).end(Buffer.from('a'.repeat(5000)));
  });
  assert.equal(zstdContentSize(streamed), undefined);
  assert.equal((await decompress(CODEC_ZSTD, streamed, 16 * 1024 * 1024)).toString(), 'a'.repeat(5000), 'and still decodes');
  assert.equal(zstdContentSize(Buffer.from('not a zstd frame')), undefined);
  assert.equal(zstdContentSize(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), undefined, 'truncated header');
});

test('frames compress on a thread: owned memory moves there and back, other buffers are copied', async () => {
  assert.deepEqual([1, 2, 3, 8, 64].map((n) => compressionThreads(n)), [1, 1, 2, 4, 4], 'one thread fewer than the CPUs, 1 to 4');
  // Owned: the memory is detached while the thread has it, and comes back as `input`, unchanged.
  const plain = rows(1, 200_000);
  const copy = Buffer.from(plain);
  const r = await compressOwned(plain);
  assert.equal(plain.buffer.byteLength, 0, 'the caller\'s view is detached');
  assert.ok(r.input.equals(copy), 'input comes back with the same bytes');
  assert.equal(r.codec, CODEC_ZSTD);
  assert.ok((await decompress(r.codec, r.data, 1 << 20)).equals(copy), 'round trip');
  assert.ok(r.data.buffer.byteLength <= r.data.length + 4096, 'the output holds no oversized buffer');

  // Many at once (more than the threads): every result belongs to its own input.
  const inputs = Array.from({ length: 40 }, (_, i) => rows(i + 2, 20_000 + i * 1000));
  const expected = inputs.map((b) => Buffer.from(b));
  const results = await Promise.all(inputs.map((b) => compressOwned(b)));
  for (let i = 0; i < results.length; i++) {
    assert.ok(results[i]!.input.equals(expected[i]!), `input ${i}`);
    assert.ok((await decompress(results[i]!.codec, results[i]!.data, 1 << 20)).equals(expected[i]!), `frame ${i}`);
  }

  // Incompressible data is stored as is: the result is the returned input.
  const noise = Buffer.allocUnsafeSlow(100_000);
  randomFillSync(noise);
  const noiseCopy = Buffer.from(noise);
  const n = await compressOwned(noise);
  assert.equal(n.codec, CODEC_NONE);
  assert.equal(n.data, n.input);
  assert.ok(n.data.equals(noiseCopy));

  // Not owned: a view into a larger buffer is copied for the thread; the buffer stays usable.
  const big = rows(99, 1_000_000);
  const view = big.subarray(1000, 201_000);
  const v = await compress(view);
  assert.equal(big.buffer.byteLength, 1_000_000, 'the caller\'s buffer is not detached');
  assert.ok((await decompress(v.codec, v.data, 1 << 20)).equals(view));
  // Small frames compress inline; compressOwned leaves them attached.
  const small = rows(5, 4000);
  const s = await compressOwned(small);
  assert.equal(small.length, 4000);
  assert.ok((await decompress(s.codec, s.data, 1 << 20)).equals(small));
});

test('the compression thread runs in a small, capped heap and keeps up over thousands of frames', async () => {
  // Each frame leaves garbage on the thread. Uncapped, V8 let that heap reach 26 MiB in a 4 GB
  // backup (docs/PERFORMANCE.md, fifth set); capped, the thread must still never run out.
  // 20 KiB: above the size that compresses inline; eight in flight, as a backup has.
  const frames: Buffer[] = Array.from({ length: 8 }, (_, i) => rows(i, 20 * 1024));
  const expected = frames.map((b) => Buffer.from(b));
  for (let round = 0; round < 1250; round++) {
    await Promise.all(frames.map(async (b, j) => {
      const r = await compressOwned(b);
      frames[j] = r.input;
      if (round % 250 === 0) assert.ok((await decompress(r.codec, r.data, expected[j]!.length)).equals(expected[j]!), `round ${round} frame ${j}`);
    }));
  }
  const heaps = await compressPool().threadStatistics();
  assert.ok(heaps.length >= 1, 'a thread ran');
  // The heap's total size moves with collection timing; the limit V8 enforces does not (uncapped it is about 4 GiB).
  for (const h of heaps) {
    assert.ok(h.limit <= 16 * 1024 * 1024, `thread heap limit ${(h.limit / 1048576).toFixed(1)} MiB`);
    assert.ok(h.used <= h.limit, `thread heap used ${(h.used / 1048576).toFixed(1)} MiB`);
  }
});

test('a compression thread ends one frame per request on a reused zstd stream: each frame stands alone and records its size', async () => {
  const before = await reusedFrames();
  const random = (n: number) => randomFillSync(Buffer.allocUnsafeSlow(n));
  // Sizes up and down, incompressible input that zstd must expand a little, and a second level:
  // what one frame leaves in the stream must not leak into the next.
  const inputs = [rows(1, 128 * 1024), random(192 * 1024), rows(2, 17 * 1024), rows(3, 700 * 1024), random(20 * 1024), rows(4, 130 * 1024), rows(1, 128 * 1024)];
  const levels = [1, 1, 1, 1, 1, 3, 1];
  const outs: Buffer[] = [];
  const plains = inputs.map((b) => Buffer.from(b));
  for (const [i, plain] of inputs.entries()) {
    const expected = plains[i]!;
    const r = await compressOwned(plain, levels[i]);
    assert.ok(r.input.equals(expected), `input ${i} comes back unchanged`);
    if (r.codec === CODEC_NONE) {
      assert.ok(i === 1 || i === 4, `only the random inputs stay uncompressed (input ${i})`);
      continue;
    }
    assert.equal(zstdContentSize(r.data), expected.length, `frame ${i} records its size`);
    // On its own, not after the others: a frame that depended on the stream's history would fail here.
    assert.ok(zlib.zstdDecompressSync(r.data).equals(expected), `frame ${i} decodes alone`);
    assert.equal(r.data.buffer.byteLength, r.data.length, `frame ${i} comes back as an exact buffer`);
    outs.push(r.data);
  }
  // The same input on the same level gives the same frame, first or after five others, and the
  // same as a fresh stream's.
  assert.ok(outs[0]!.equals(outs.at(-1)!), 'the first and the last frame are identical');
  assert.ok(outs[0]!.equals(zlib.zstdCompressSync(plains[0]!, zstdOptions(plains[0]!.length, 1))), 'and identical to zstdCompressSync');
  // Over 1 MiB (a whole document, not a frame) goes through zstdCompressSync instead.
  const big = rows(5, 2 * 1024 * 1024);
  const bigCopy = Buffer.from(big);
  const rb = await compressOwned(big);
  assert.equal(zstdContentSize(rb.data), bigCopy.length, 'the large frame records its size');
  assert.ok(zlib.zstdDecompressSync(rb.data).equals(bigCopy), 'and decodes');
  assert.equal(await reusedFrames() - before, inputs.length, 'every frame took the reused-stream path on this Node, the large one not');
});
