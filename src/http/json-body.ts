/**
 * JSON request bodies as Quay's automation sends them: it puts `Content-Type: application/json` on
 * every call, also on a DELETE or a body-less POST (sign-out), where Fastify's own parser refuses the
 * empty body with 400. In the scope of `app`, an empty (or all-whitespace) JSON body is no body at all;
 * anything else goes to Fastify's default parser (which keeps refusing malformed JSON and
 * `__proto__`/`constructor` keys).
 */
import type { FastifyInstance } from 'fastify';

export function acceptEmptyJsonBodies(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined);
    return parse(req, body as string, done);
  });
}
