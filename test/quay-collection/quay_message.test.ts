/**
 * The collection's `quay_message` module, replayed call by call (quay-module.ts): every message
 * from GET messages, matches by content, substring, regular expression or severity, removal with
 * DELETE message/{uuid} (singular), and (re)creation with POST messages {message: {content, severity,
 * media_type}} — a changed message is deleted and posted again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS } from '../helpers/databases.js';
import { AUTH_MODES, buildQuayWorld, type QuayModule, type QuayWorld } from '../helpers/quay-world.js';

type Severity = 'info' | 'warning' | 'error';
interface MessageParams {
  content?: string;
  severity?: Severity;
  format?: 'markdown' | 'plain';
  regexp?: string;
  search_string?: string;
  search_severity?: Severity;
  state?: 'present' | 'absent';
}

async function quayMessage(m: QuayModule, p: MessageParams): Promise<{ changed: boolean }> {
  const listed = await m.get('messages');
  const matches: Array<Record<string, any>> = [];
  for (const message of listed?.messages ?? []) {
    if (p.search_severity && message.severity !== p.search_severity) continue;
    const content: string = message.content ?? '';
    if (p.search_string !== undefined) {
      if (content.includes(p.search_string)) matches.push(message);
      continue;
    }
    if (p.regexp !== undefined) {
      if (new RegExp(p.regexp).test(content)) matches.push(message);
      continue;
    }
    if (p.content !== undefined) {
      if (content === p.content) matches.push(message);
      continue;
    }
    if (p.search_severity) matches.push(message);
  }
  if (p.state === 'absent') {
    for (const message of matches) await m.delete(true, `message/${message.uuid ?? ''}`);
    return { changed: matches.length > 0 };
  }
  let fields: Record<string, unknown> = {};
  if (p.content !== undefined) fields.content = p.content;
  if (p.severity) fields.severity = p.severity;
  if (p.format) fields.media_type = `text/${p.format}`;
  if (matches.length) {
    if (matches.some((message) => Object.keys(fields).every((k) => fields[k] === message[k]))) return { changed: false };
    for (const message of matches) await m.delete(true, `message/${message.uuid ?? ''}`);
    const { uuid: _uuid, ...last } = { ...matches[matches.length - 1]!, ...fields };
    fields = last;
  }
  fields.content ??= '';
  fields.severity ??= 'info';
  fields.media_type ??= 'text/plain';
  await m.create('messages', { message: fields });
  return { changed: true };
}

for (const dialect of DIALECTS) for (const mode of AUTH_MODES) {
  describe(`quay_message against Wharf (${dialect}, ${mode})`, () => {
    let w: QuayWorld;
    before(async () => {
      w = await buildQuayWorld(dialect, mode);
      await w.a.accounts.createUser({ name: 'plain', password: 'plain-password-1' });
    });
    after(() => w?.close());

    const list = async () => ((await (await w.module()).get('messages'))?.messages ?? []) as Array<Record<string, unknown>>;

    it('publishes a message; a second run changes nothing; everyone (anonymous too) reads it', async () => {
      const params: MessageParams = { content: 'Maintenance on **Sunday**', severity: 'warning', format: 'markdown' };
      assert.deepEqual(await quayMessage(await w.module(), params), { changed: true });
      const again = await w.module();
      assert.deepEqual(await quayMessage(again, params), { changed: false });
      assert.deepEqual(again.calls.map((c) => `${c.method} ${c.status}`), ['GET 200']);
      const [message] = await list();
      assert.deepEqual(Object.keys(message!).sort(), ['content', 'media_type', 'severity', 'uuid']);
      assert.deepEqual({ ...message, uuid: undefined }, { content: 'Maintenance on **Sunday**', severity: 'warning', media_type: 'text/markdown', uuid: undefined });
      const anonymous = await w.t.app.inject({ url: '/api/v1/messages' });
      assert.equal(anonymous.statusCode, 200);
      assert.equal(anonymous.json().messages.length, 1);
    });

    it('changes a message found by substring (delete, then post again with the new severity)', async () => {
      const m = await w.module();
      assert.deepEqual(await quayMessage(m, { search_string: 'Maintenance', severity: 'error' }), { changed: true });
      assert.deepEqual(m.calls.map((c) => `${c.method} ${c.path.replace(/message\/[^/]+$/, 'message/<uuid>')} ${c.status}`), [
        'GET /api/v1/messages 200',
        'DELETE /api/v1/message/<uuid> 204',
        'POST /api/v1/messages 201',
      ]);
      const messages = await list();
      assert.equal(messages.length, 1);
      assert.equal(messages[0]!.severity, 'error');
      assert.equal(messages[0]!.content, 'Maintenance on **Sunday**');
      assert.deepEqual(await quayMessage(await w.module(), { regexp: '^Maint', severity: 'error' }), { changed: false });
    });

    it('removes messages by severity; a second absent run changes nothing', async () => {
      await quayMessage(await w.module(), { content: 'Welcome', severity: 'info' });
      assert.equal((await list()).length, 2);
      assert.deepEqual(await quayMessage(await w.module(), { search_severity: 'error', state: 'absent' }), { changed: true });
      assert.deepEqual((await list()).map((x) => x.content), ['Welcome']);
      assert.deepEqual(await quayMessage(await w.module(), { search_severity: 'error', state: 'absent' }), { changed: false });
    });

    it('only superusers publish or delete (403); bad input is a 400 and an unknown uuid a 404, never a 5xx', async () => {
      const asPlain = await w.module('plain');
      await assert.rejects(asPlain.create('messages', { message: { content: 'x', severity: 'info', media_type: 'text/plain' } }), /HTTP 403/);
      const uuid = (await list())[0]!.uuid as string;
      await assert.rejects(asPlain.delete(true, `message/${uuid}`), /HTTP 403/);
      const anonymous = await w.t.app.inject({ method: 'POST', url: '/api/v1/messages', payload: { message: { content: 'x', severity: 'info', media_type: 'text/plain' } } });
      assert.equal(anonymous.statusCode, 401);

      const m = await w.module();
      for (const body of [
        {},
        { message: 'hello' },
        { message: { content: 'x', severity: 'fatal', media_type: 'text/plain' } },
        { message: { content: 'x', severity: 'info', media_type: 'text/html' } },
        { message: { severity: 'info', media_type: 'text/plain' } },
        { message: { content: 'x'.repeat(70_000), severity: 'info', media_type: 'text/plain' } },
      ]) {
        const res = await m.request('POST', 'messages', { body, okErrorCodes: [400] });
        assert.equal(res.status, 400, JSON.stringify(body).slice(0, 100));
        assert.equal(res.json.error_type, 'invalid_request');
      }
      for (const id of ['no-such-uuid', 'x'.repeat(200)]) {
        const res = await m.request('DELETE', `message/${id}`, { okErrorCodes: [400, 404] });
        assert.ok([400, 404].includes(res.status), `${id}: ${res.status}`);
      }
      assert.equal((await list()).length, 1);
    });
  });
}
