// Realistic table-like bench data: rows of ids, words, numbers, jsonb-ish text and hex, which
// compress about 3x like real tables (not 50x like pgbench's padding).
import { createHash, randomBytes } from 'node:crypto';

export function tableText(bytes: number, seed = 1): Buffer {
  const words = Array.from({ length: 2000 }, (_, i) => createHash('md5').update(`${seed}-${i}`).digest('base64url').slice(0, 3 + (i % 10)));
  const parts: Buffer[] = [];
  let n = 0;
  let x = seed >>> 0;
  while (n < bytes) {
    const lines: string[] = [];
    for (let i = 0; i < 1000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      lines.push(`${n + i}\t${words[x % 2000]} ${words[(x >>> 11) % 2000]}\t${(x % 1000000) / 100}\t{"sku": "${words[(x >>> 5) % 2000]}", "qty": ${x % 9}}\t${randomBytes(8).toString('hex')}\n`);
    }
    const b = Buffer.from(lines.join(''));
    parts.push(b);
    n += b.length;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}
