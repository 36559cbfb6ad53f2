/**
 * Global messages (Quay's `/messages`): banners for every user of the registry. Anyone may read them;
 * superusers publish and delete them.
 *
 *   GET    /messages          {messages: [{uuid, content, media_type, severity}]}, oldest first
 *   POST   /messages          {message: {content, media_type, severity}} → 201 the message
 *   DELETE /message/{uuid}    204; 404 when there is no such message
 */
import { z } from 'zod';
import { MAX_MESSAGE_LENGTH, MESSAGE_MEDIA_TYPES, MESSAGE_SEVERITIES, type GlobalMessage } from '../../registry/accounts/message-service.js';
import { defineRoute } from './route.js';

const MessageSchema = z.strictObject({ uuid: z.string(), content: z.string(), media_type: z.enum(MESSAGE_MEDIA_TYPES), severity: z.enum(MESSAGE_SEVERITIES) });

const view = (m: GlobalMessage) => ({ uuid: m.uuid, content: m.content, media_type: m.mediaType, severity: m.severity });

export const messageRoutes = [
  defineRoute({
    method: 'GET',
    path: '/messages',
    summary: 'The global messages superusers published, oldest first (anyone may read them)',
    tag: 'messages',
    response: z.strictObject({ messages: z.array(MessageSchema) }),
    async handler(ctx) {
      return { messages: (await ctx.accounts.messages.list()).map(view) };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/messages',
    summary: 'Publish a global message (superusers only)',
    tag: 'messages',
    status: 201,
    body: z.object({
      message: z.object({ content: z.string().max(MAX_MESSAGE_LENGTH), media_type: z.enum(MESSAGE_MEDIA_TYPES), severity: z.enum(MESSAGE_SEVERITIES) }),
    }),
    response: MessageSchema,
    async handler(ctx, { body }) {
      await ctx.superuser();
      const m = await ctx.accounts.messages.create({ content: body.message.content, mediaType: body.message.media_type, severity: body.message.severity });
      await ctx.audit('create_global_message', { metadata: { uuid: m.uuid, severity: m.severity } });
      return view(m);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/message/:uuid',
    summary: 'Delete a global message (superusers only)',
    tag: 'messages',
    status: 204,
    params: z.object({ uuid: z.string().min(1).max(100) }),
    async handler(ctx, { params }) {
      await ctx.superuser();
      await ctx.accounts.messages.delete(params.uuid);
      await ctx.audit('delete_global_message', { metadata: { uuid: params.uuid } });
    },
  }),
];
