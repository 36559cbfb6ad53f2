/** How S3 errors are told apart, allowing for RGW 16.2 (a 404 `NoSuchKey` where AWS says `NoSuchUpload`). */

/** A missing object, upload or bucket: any 404, whatever its code. */
export function isS3NotFound(err: unknown): boolean {
  return s3Status(err) === 404;
}

/** The HTTP status of an S3 error response, undefined for errors that got no response. */
export function s3Status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** A TLS connection refused because the store's certificate does not verify (untrusted, expired, another name). */
export function isCertificateError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /CERT|SIGNATURE|ISSUER/.test(code);
}
