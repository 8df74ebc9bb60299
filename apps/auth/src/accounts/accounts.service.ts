import {
  ConflictException,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  OnApplicationBootstrap,
  UnauthorizedException,
} from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { type FindOptionsWhere, In, Repository } from 'typeorm';

import { SecurityEvents } from '@portcullis/audit';
import type { Role } from '@portcullis/contracts';
import { APP_CONFIG, type Actor, type AppConfig, FieldEncryption } from '@portcullis/core';

import { SessionsService } from '../tokens/sessions.service';
import { type TokenPair, TokenIssuer } from '../tokens/token-issuer';
import { ACCOUNT_EMAIL_INDEX, Account } from './account.entity';
import type {
  AccountPage,
  AccountPageQuery,
  AccountView,
  LoginDto,
  RegisterDto,
} from './account.dto';
import { LoginLimiter } from './login-limiter';
import { PasswordHasher } from './password-hasher';
import { checkPasswordPolicy } from './password-policy';

const UNIQUE_VIOLATION = '23505';

@Injectable()
export class AccountsService implements OnApplicationBootstrap {
  private readonly logger = new Logger(AccountsService.name);

  constructor(
    @InjectRepository(Account, 'auth') private readonly accounts: Repository<Account>,
    private readonly hasher: PasswordHasher,
    private readonly tokens: TokenIssuer,
    private readonly sessions: SessionsService,
    private readonly limiter: LoginLimiter,
    private readonly events: SecurityEvents,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly fields: FieldEncryption,
  ) {}

  async register(input: RegisterDto): Promise<AccountView> {
    const email = normalizeEmail(input.email);
    checkPasswordPolicy(email, input.password);

    const account = await this.create(email, input.password, ['customer']);

    this.events.record({
      type: 'auth.account_registered',
      outcome: 'allowed',
      actorId: account.id,
      resourceType: 'account',
      resourceId: account.id,
    });
    return view(account);
  }

  /**
   * Checks a password. Unknown emails cost the same hash as wrong passwords and get the same
   * answer; failures count against the email and the client IP (see {@link LoginLimiter}).
   */
  async login(input: LoginDto, clientIp: string): Promise<TokenPair> {
    const email = normalizeEmail(input.email);
    const subjects = [
      this.limiter.accountSubject(email),
      this.limiter.ipSubject('login', clientIp),
    ];
    await this.limiter.assertAllowed(subjects);

    const account = await this.accounts.findOneBy(this.withEmail(email));
    const valid = await this.hasher.verify(account?.passwordHash, input.password);
    if (!account || !valid) {
      await this.limiter.recordFailure(subjects, { clientIp, accountId: account?.id });
      this.events.record({
        type: 'auth.login_failed',
        outcome: 'denied',
        reason: account ? 'wrong_password' : 'unknown_account',
        clientIp,
        resourceType: 'account',
        resourceId: account?.id,
      });
      throw new UnauthorizedException('invalid email or password');
    }

    await this.limiter.clear(subjects[0]);
    if (this.hasher.needsRehash(account.passwordHash)) {
      await this.accounts.update(
        { id: account.id },
        { passwordHash: await this.hasher.hash(input.password) },
      );
    }
    const pair = await this.tokens.startSession(account);
    this.events.record({
      type: 'auth.login_succeeded',
      outcome: 'allowed',
      actorId: account.id,
      resourceType: 'account',
      resourceId: account.id,
    });
    return pair;
  }

  async listAccounts(page: AccountPageQuery): Promise<AccountPage> {
    const [accounts, total] = await this.accounts.findAndCount({
      order: { createdAt: 'ASC', id: 'ASC' },
      skip: page.offset,
      take: page.limit,
    });
    return { items: accounts.map(view), total, limit: page.limit, offset: page.offset };
  }

  /**
   * Sets an account's roles. The last admin cannot lose the role. The account's sessions are
   * revoked, so the change takes effect in every service at once; the next login carries the
   * new roles.
   */
  async setRoles(actor: Actor, accountId: string, roles: Role[]): Promise<AccountView> {
    const unique = [...new Set(roles)];
    const account = await this.accounts.manager.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['portcullis:admins']);
      const target = await tx.findOneBy(Account, { id: accountId });
      if (!target) throw new NotFoundException('account not found');
      if (target.roles.includes('admin') && !unique.includes('admin')) {
        const admins = await tx
          .createQueryBuilder(Account, 'a')
          .where(`'admin' = ANY(a.roles)`)
          .getCount();
        if (admins <= 1) throw new ConflictException('the last admin cannot lose the admin role');
      }
      await tx.update(Account, { id: accountId }, { roles: unique });
      return { ...target, roles: unique };
    });

    this.events.record({
      type: 'auth.roles_changed',
      outcome: 'allowed',
      actorId: actor.id,
      resourceType: 'account',
      resourceId: accountId,
      details: { roles: unique.join(',') },
    });
    await this.sessions.revokeSessions(accountId, 'role_change');
    return view(account);
  }

  async describe(accountId: string): Promise<AccountView> {
    const account = await this.accounts.findOneBy({ id: accountId });
    if (!account) throw new NotFoundException('account not found');
    return view(account);
  }

  /** Creates or promotes the first admin from configuration, once, when none exists. */
  async onApplicationBootstrap(): Promise<void> {
    const { bootstrapAdminEmail: email, bootstrapAdminPassword: password } = this.config;
    if (!email || !password) return;
    const admins = await this.accounts
      .createQueryBuilder('a')
      .where(`'admin' = ANY(a.roles)`)
      .getCount();
    if (admins > 0) return;

    const existing = await this.accounts.findOneBy(this.withEmail(normalizeEmail(email)));
    if (existing) {
      await this.accounts.update(
        { id: existing.id },
        { roles: [...new Set([...existing.roles, 'admin' as const])] },
      );
    } else {
      try {
        checkPasswordPolicy(normalizeEmail(email), password);
      } catch (error) {
        const rule = (error as { getResponse?: () => { message?: string[] } }).getResponse?.()
          .message?.[0];
        throw new Error(`BOOTSTRAP_ADMIN_PASSWORD does not meet the password policy: ${rule}`, {
          cause: error,
        });
      }
      await this.create(normalizeEmail(email), password, ['admin']);
    }
    this.logger.log({ msg: 'bootstrap admin ensured' });
    this.events.record({ type: 'auth.bootstrap_admin', outcome: 'allowed' });
  }

  /** Where-clause of the account with this (normalized) email, by its blind index. */
  private withEmail(email: string): FindOptionsWhere<Account> {
    return { emailIndex: In(this.fields.blindIndex().candidates(ACCOUNT_EMAIL_INDEX, email)) };
  }

  private async create(email: string, password: string, roles: Role[]): Promise<Account> {
    const account = this.accounts.create({
      id: randomUUID(),
      passwordHash: await this.hasher.hash(password),
      roles,
    });
    account.email = email;
    try {
      await this.accounts.manager.transaction(async (tx) => {
        // While blind-index keys rotate, an account may still carry a digest under an older
        // version, which the unique constraint cannot compare with a new one: registrations
        // of one email queue on a lock named after its digest under the oldest version in use,
        // then look for every version.
        const candidates = this.fields.blindIndex().candidates(ACCOUNT_EMAIL_INDEX, email);
        const oldest = candidates[candidates.length - 1].toString('hex');
        await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
          `portcullis:email:${oldest}`,
        ]);
        if (await tx.existsBy(Account, { emailIndex: In(candidates) })) {
          throw new ConflictException('an account with this email already exists');
        }
        await tx.insert(Account, account);
      });
    } catch (error) {
      if ((error as { driverError?: { code?: string } }).driverError?.code === UNIQUE_VIOLATION) {
        throw new ConflictException('an account with this email already exists');
      }
      throw error;
    }
    return account;
  }
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

function view(account: Account): AccountView {
  return { id: account.id, email: account.email, roles: account.roles };
}
