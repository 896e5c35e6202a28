// A certificate authority made per simulator run and a server certificate for localhost and
// 127.0.0.1 signed by it. Clients trust the CA through their TLS options (or NODE_EXTRA_CA_CERTS).
import { randomBytes } from 'node:crypto';
import { generate } from 'selfsigned';

export interface SimulatorTls { caCert: string; cert: string; key: string }

export async function makeTls(): Promise<SimulatorTls> {
  const now = new Date();
  const notBeforeDate = new Date(now.getTime() - 60_000);
  const notAfterDate = new Date(now.getTime() + 7 * 86_400_000);
  // A subject of its own per run: TLS picks the issuer by name, so two runs' CAs in one bundle must differ.
  const ca = await generate([{ name: 'commonName', value: `cosmos-backup ARM simulator CA ${randomBytes(4).toString('hex')} (test only)` }], {
    keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notBeforeDate, notAfterDate,
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }],
  });
  const server = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notBeforeDate, notAfterDate, ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  return { caCert: ca.cert, cert: server.cert, key: server.private };
}
