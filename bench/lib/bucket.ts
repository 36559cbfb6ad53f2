/**
 * The bucket the scale-out benchmark shares between Wharf and Distribution: its connection settings from
 * BENCH_SCALEOUT_S3_* (scripts/bench.sh starts a throw-away RADOS Gateway and sets them, or passes on the
 * caller's), and the removal of everything under a key prefix once the run is over (objects and
 * unfinished multipart uploads), so that a run leaves the bucket as it found it.
 */
import { AbortMultipartUploadCommand, DeleteObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

export interface BucketSettings {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The settings from the environment; throws naming what is missing. */
export function bucketFromEnv(env: NodeJS.ProcessEnv = process.env): BucketSettings {
  const names = ['ENDPOINT', 'BUCKET', 'ACCESS_KEY_ID', 'SECRET_ACCESS_KEY'].map((n) => `BENCH_SCALEOUT_S3_${n}`);
  const missing = names.filter((n) => !env[n]);
  if (missing.length) throw new Error(`${missing.join(', ')} not set: run the suite through scripts/bench.sh, which starts RADOS Gateway (or name an S3 server with these variables)`);
  return {
    endpoint: env.BENCH_SCALEOUT_S3_ENDPOINT!,
    bucket: env.BENCH_SCALEOUT_S3_BUCKET!,
    region: env.BENCH_SCALEOUT_S3_REGION || 'us-east-1',
    accessKeyId: env.BENCH_SCALEOUT_S3_ACCESS_KEY_ID!,
    secretAccessKey: env.BENCH_SCALEOUT_S3_SECRET_ACCESS_KEY!,
  };
}

/** Deletes every object and aborts every multipart upload whose key starts with `prefix` (non-empty). */
export async function emptyPrefix(b: BucketSettings, prefix: string): Promise<number> {
  if (!prefix) throw new Error('emptyPrefix needs a prefix (it never empties a whole bucket)');
  const client = new S3Client({
    endpoint: b.endpoint,
    region: b.region,
    forcePathStyle: true,
    credentials: { accessKeyId: b.accessKeyId, secretAccessKey: b.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  let deleted = 0;
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: b.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        await client.send(new DeleteObjectCommand({ Bucket: b.bucket, Key: o.Key! }));
        deleted++;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: b.bucket, Prefix: prefix }));
    for (const u of uploads.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: b.bucket, Key: u.Key!, UploadId: u.UploadId! }));
  } finally {
    client.destroy();
  }
  return deleted;
}
