import { generateKeyPairSync, randomUUID } from 'node:crypto';

import { Controller, Get, Module } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import jwt from 'jsonwebtoken';

import type { RevocationsReply, TokenKeysReply } from '@portcullis/contracts';
import { DatabaseModule, loadConfig, runHost } from '@portcullis/core';
import {
  InboxRecord,
  OutboxRecord,
  messagingTablesMigration,
  outboxTraceContextMigration,
} from '@portcullis/messaging';
import { Public, Roles, securedHostModules } from '@portcullis/security';

/**
 * The process the HTTP benchmark loads: Portcullis's own host (Fastify, helmet, rate limits,
 * the global guard and its verified-token cache) serving one small route twice, once public
 * and once for customers only. It stands in for auth on the bus, answering the token-key
 * query with its own key (and the revocation query with none), and prints a customer token
 * signed with that key. Its only tables are auth's outbox and inbox, in the embedded database.
 */
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const KID = 'bench-key';

@Controller('bench')
class BenchRoutes {
  @Get('public')
  @Public()
  open(): { ok: boolean } {
    return { ok: true };
  }

  @Get('guarded')
  @Roles('customer')
  guarded(): { ok: boolean } {
    return { ok: true };
  }

  /** CPU time this process has used so far, in microseconds, read before and after a run. */
  @Get('cpu')
  @Public()
  cpu(): { microseconds: number } {
    const { user, system } = process.cpuUsage();
    return { microseconds: user + system };
  }
}

@Controller()
class BenchTokenKeys {
  @MessagePattern('auth.keys.query')
  keys(): TokenKeysReply {
    const { n, e } = publicKey.export({ format: 'jwk' });
    return { keys: [{ kty: 'RSA', kid: KID, use: 'sig', alg: 'RS256', n: n!, e: e! }] };
  }

  @MessagePattern('auth.revocations.query')
  revocations(): RevocationsReply {
    return { sessions: [] };
  }
}

@Module({
  imports: [
    DatabaseModule.forService({
      service: 'auth',
      entities: [OutboxRecord, InboxRecord],
      migrations: [messagingTablesMigration('auth'), outboxTraceContextMigration('auth')],
    }),
  ],
  controllers: [BenchRoutes, BenchTokenKeys],
})
class BenchModule {}

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await runHost({
    name: 'bench',
    services: ['auth', 'orders', 'billing'],
    imports: () => [...securedHostModules('auth'), BenchModule],
  });
  const token = jwt.sign({ sid: randomUUID(), roles: ['customer'] }, privateKey, {
    algorithm: 'RS256',
    keyid: KID,
    issuer: config.tokenIssuer,
    audience: config.tokenAudience,
    subject: randomUUID(),
    expiresIn: config.accessTokenTtlSeconds,
  });
  process.stdout.write(`BENCH-READY ${JSON.stringify({ url: await app.getUrl(), token })}\n`);
}

void main();
