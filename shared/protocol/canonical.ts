// Canonical JSON, the byte string MACs are computed over: object keys sorted by UTF-16 code
// units, no whitespace, strings and numbers as JSON.stringify writes them, keys whose value is
// undefined left out (as JSON.stringify does). For the values our schemas allow (strings, finite
// numbers, booleans, null, arrays, plain objects) this is RFC 8785 (JCS).
import { ProtocolError } from './errors.ts';

export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(v: unknown, path: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new ProtocolError('schema', `canonical JSON: ${path} is not a finite number`, { path });
      return JSON.stringify(v);
    case 'object':
      break;
    default:
      throw new ProtocolError('schema', `canonical JSON: ${path} is a ${typeof v}, not a JSON value`, { path });
  }
  if (Array.isArray(v)) return `[${v.map((x, i) => (x === undefined ? 'null' : write(x, `${path}[${i}]`))).join(',')}]`;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    throw new ProtocolError('schema', `canonical JSON: ${path} is not a plain object`, { path });
  }
  const obj = v as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    if (obj[k] === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${write(obj[k], `${path}.${k}`)}`);
  }
  return `{${parts.join(',')}}`;
}
