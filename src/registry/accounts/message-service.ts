/**
 * Global messages: banners superusers publish to every user (Quay's `/api/v1/messages`). Anyone may
 * read them; the caller checks that whoever creates or deletes one is a superuser.
 */
import { randomUUID } from 'node:crypto';
import type { GlobalMessageRecord, GlobalMessageStore } from '../../db/global-message-store.js';
import { AccountError } from './account-error.js';

export const MESSAGE_MEDIA_TYPES = ['text/plain', 'text/markdown'] as const;
export const MESSAGE_SEVERITIES = ['info', 'warning', 'error'] as const;
export type MessageMediaType = (typeof MESSAGE_MEDIA_TYPES)[number];
export type MessageSeverity = (typeof MESSAGE_SEVERITIES)[number];
export type GlobalMessage = GlobalMessageRecord & { mediaType: MessageMediaType; severity: MessageSeverity };

export const MAX_MESSAGE_LENGTH = 65_536;

export class MessageService {
  constructor(private readonly store: GlobalMessageStore) {}

  /** Every message, oldest first. */
  async list(): Promise<GlobalMessage[]> {
    return (await this.store.list()) as GlobalMessage[];
  }

  /** Publishes a message with a new uuid. */
  async create(message: { content: string; mediaType: MessageMediaType; severity: MessageSeverity }): Promise<GlobalMessage> {
    if (message.content.length > MAX_MESSAGE_LENGTH) throw new AccountError('invalid_request', `a message is at most ${MAX_MESSAGE_LENGTH} characters`);
    return (await this.store.create({ uuid: randomUUID(), ...message })) as GlobalMessage;
  }

  /** Deletes the message; not_found if there is none with that uuid. */
  async delete(uuid: string): Promise<void> {
    if (!(await this.store.delete(uuid))) throw new AccountError('not_found', `message ${uuid.slice(0, 100)} not found`);
  }
}
