import {
  Controller,
  Inject,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';

import type { SessionsRevokedEvent, TokenKeysRotatedEvent } from '@portcullis/contracts';
import { MessageClient, type VerifiedMessage } from '@portcullis/messaging';

import { RevocationList } from './revocation-list';
import { TokenKeyStore } from './token-key-store';
import { VerifiedTokenCache } from './verified-token-cache';

/** How often a process re-learns revocations, in case it missed an event. */
const RESYNC_INTERVAL_MS = 15_000;

/**
 * Keeps this process's revocation list and token keys current: applies auth's revocation and
 * key-rotation events as they arrive, and asks auth for every revocation that still matters
 * at start-up and every few seconds after, so a process that starts late or misses an event
 * catches up.
 */
@Controller()
export class RevocationListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RevocationListener.name);
  private timer?: NodeJS.Timeout;
  private synced = false;

  constructor(
    private readonly revocations: RevocationList,
    private readonly keys: TokenKeyStore,
    private readonly cache: VerifiedTokenCache,
    @Inject(MessageClient) private readonly messages: MessageClient,
  ) {}

  @EventPattern('auth.session.revoked')
  onSessionsRevoked(@Payload() message: VerifiedMessage<SessionsRevokedEvent>): void {
    const until = Date.parse(message.payload.relevantUntil);
    for (const sessionId of message.payload.sessionIds) this.revocations.revoke(sessionId, until);
  }

  @EventPattern('auth.keys.rotated')
  async onKeysRotated(@Payload() message: VerifiedMessage<TokenKeysRotatedEvent>): Promise<void> {
    if (message.payload.withdrawnKids.length > 0) this.cache.clear();
    await this.keys.replaceAll(message.payload.withdrawnKids);
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.resync(), RESYNC_INTERVAL_MS);
    this.timer.unref();
    setTimeout(() => void this.resync(), 0).unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  private async resync(): Promise<void> {
    try {
      const reply = await this.messages.request('auth.revocations.query', {}, 3000);
      for (const { sessionId, relevantUntil } of reply.sessions) {
        this.revocations.revoke(sessionId, Date.parse(relevantUntil));
      }
      this.revocations.prune();
      if (!this.synced)
        this.logger.log({ msg: 'revocations synced', count: reply.sessions.length });
      this.synced = true;
    } catch {
      if (this.synced) this.logger.warn({ msg: 'revocation resync failed; will retry' });
    }
  }
}
