/** TLS material: configured files, or a self-signed certificate generated once and kept in the data dir. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import type { Config } from '../config/schema.js';

export async function tlsOptions(config: Config): Promise<{ cert: Buffer; key: Buffer; generated?: string } | undefined> {
  if (config.tls.cert && config.tls.key) {
    return { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
  }
  const host = config.tls.self_signed_hostname;
  if (!host) return undefined;
  const dir = join(config.data_dir, 'tls');
  const certPath = join(dir, `${host}.crt`);
  const keyPath = join(dir, `${host}.key`);
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const isIp = /^[\d.]+$|:/.test(host);
    const pems = await selfsigned.generate([{ name: 'commonName', value: host }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [isIp ? { type: 7, ip: host } : { type: 2, value: host }, { type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
      ],
    } as never);
    writeFileSync(certPath, pems.cert, { mode: 0o644 });
    writeFileSync(keyPath, pems.private, { mode: 0o600 });
    return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private), generated: certPath };
  }
  return { cert: readFileSync(certPath), key: readFileSync(keyPath) };
}
