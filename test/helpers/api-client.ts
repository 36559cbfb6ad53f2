/** `inject()` helpers for `/api/v1` route tests. */
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';

export const basicOf = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

export interface ApiResult {
  status: number;
  raw: string;
  body: Record<string, any> | undefined;
}

/** `call(method, url, authorization?, payload?)` against `/api/v1`, and `expectError(call, status)` for the error shape. */
export function apiClient(app: () => FastifyInstance) {
  const call = async (method: string, url: string, authorization?: string, payload?: unknown): Promise<ApiResult> => {
    const res = await app().inject({
      method: method as 'GET',
      url: `/api/v1${url}`,
      headers: authorization ? { authorization } : {},
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    return { status: res.statusCode, raw: res.body, body: res.body ? (res.json() as Record<string, any>) : undefined };
  };
  const expectError = async (p: Promise<ApiResult>, status: number) => {
    const res = await p;
    assert.equal(res.status, status, res.raw);
    assert.equal(res.body!.status, status);
    assert.equal(typeof res.body!.detail, 'string');
  };
  return { call, expectError };
}
