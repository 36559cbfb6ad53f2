/**
 * The S3 server of the test run: `scripts/test.sh` starts a throwaway Ceph RADOS Gateway when S3 tests
 * run and exports WHARF_TEST_S3_*; each test gets its own key prefix in the bucket, emptied afterwards.
 */
import { randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { S3BlobDriver, type S3DriverOptions } from '../../src/storage/s3/s3-blob-driver.js';

/** The test server's connection settings; throws (never skips) when the test command did not start one. */
export function testS3Options(): S3DriverOptions {
  const env = process.env;
  const missing = ['WHARF_TEST_S3_ENDPOINT', 'WHARF_TEST_S3_BUCKET', 'WHARF_TEST_S3_ACCESS_KEY_ID', 'WHARF_TEST_S3_SECRET_ACCESS_KEY'].filter((n) => !env[n]);
  if (missing.length) throw new Error(`${missing.join(', ')} not set: run S3 tests with \`bash scripts/test.sh <files>\`, which starts RADOS Gateway`);
  return {
    endpoint: env.WHARF_TEST_S3_ENDPOINT,
    bucket: env.WHARF_TEST_S3_BUCKET!,
    region: env.WHARF_TEST_S3_REGION ?? 'us-east-1',
    accessKeyId: env.WHARF_TEST_S3_ACCESS_KEY_ID,
    secretAccessKey: env.WHARF_TEST_S3_SECRET_ACCESS_KEY,
    forcePathStyle: true,
  };
}

/** A driver on a fresh prefix of the test bucket; `cleanup` deletes what it holds and aborts its uploads. */
export async function openTestS3Driver(opts: Partial<S3DriverOptions> = {}): Promise<{ driver: S3BlobDriver; prefix: string; cleanup: () => Promise<void> }> {
  const prefix = `test-${randomBytes(6).toString('hex')}`;
  const driver = new S3BlobDriver({ ...testS3Options(), prefix, ...opts });
  await driver.probe();
  return {
    driver,
    prefix,
    cleanup: async () => {
      const keys: string[] = [];
      for await (const k of driver.list('')) keys.push(k);
      for (const k of keys) await driver.delete(k);
      await driver.sweepStaging(-60_000);
      driver.close();
    },
  };
}

/** How many S3 multipart uploads are open under `prefix` in the test bucket. */
export async function openMultipartUploads(prefix: string): Promise<number> {
  const o = testS3Options();
  const client = new S3Client({ endpoint: o.endpoint, region: o.region, forcePathStyle: true, credentials: { accessKeyId: o.accessKeyId!, secretAccessKey: o.secretAccessKey! } });
  try {
    const res = await client.send(new ListMultipartUploadsCommand({ Bucket: o.bucket, Prefix: `${prefix}/` }));
    return res.Uploads?.length ?? 0;
  } finally {
    client.destroy();
  }
}
