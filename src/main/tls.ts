/**
 * TLS material: configured files, or a self-signed certificate generated once and kept in the data dir.
 * Files that cannot be read, or do not hold a matching certificate and key, are StartupErrors.
 */
import { createSecureContext } from 'node:tls';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { StartupError } from './startup-error.js';

export async function tlsOptions(config: Config): Promise<{ cert: Buffer; key: Buffer; generated?: string } | undefined> {
  if (config.tls.cert && config.tls.key) {
    const material = { cert: readTlsFile('tls.cert', config.tls.cert), key: readTlsFile('tls.key', config.tls.key) };
    try {
      createSecureContext(material);
    } catch (err) {
      throw new StartupError(`tls.cert ${config.tls.cert} and tls.key ${config.tls.key} are not a PEM certificate and its private key (${(err as Error).message})`);
    }
    return material;
  }
  const host = config.tls.self_signed_hostname;
  if (!host) return undefined;
  const dir = join(config.data_dir, 'tls');
  const certPath = join(dir, `${host}.crt`);
  const keyPath = join(dir, `${host}.key`);
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const isIp = /^[\d.]+$|:/.test(host);
    // Loaded only when a certificate is generated: it is a large module every other start can skip.
    const { default: selfsigned } = await import('selfsigned');
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

function readTlsFile(key: 'tls.cert' | 'tls.key', path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a directory' : e.message;
    throw new StartupError(`cannot read ${key} ${path}: ${why}; fix the path (${key === 'tls.cert' ? 'WHARF_TLS_CERT' : 'WHARF_TLS_KEY'}) or the file's permissions`);
  }
}
