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
import { Repository } from 'typeorm';

import { SecurityEvents } from '@portcullis/audit';
import type { Role } from '@portcullis/contracts';
import { APP_CONFIG, type AppConfig } from '@portcullis/core';

import { type TokenPair, TokenIssuer } from '../tokens/token-issuer';
import { Account } from './account.entity';
import type { AccountView, LoginDto, RegisterDto } from './account.dto';
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
    private readonly events: SecurityEvents,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
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

  async login(input: LoginDto): Promise<TokenPair> {
    const email = normalizeEmail(input.email);
    const account = await this.accounts.findOneBy({ email });

    const valid = await this.hasher.verify(account?.passwordHash, input.password);
    if (!account || !valid) {
      this.events.record({
        type: 'auth.login_failed',
        outcome: 'denied',
        reason: account ? 'wrong_password' : 'unknown_account',
        resourceType: 'account',
        resourceId: account?.id,
      });
      throw new UnauthorizedException('invalid email or password');
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

    const existing = await this.accounts.findOneBy({ email: normalizeEmail(email) });
    if (existing) {
      await this.accounts.update(
        { id: existing.id },
        { roles: [...new Set([...existing.roles, 'admin' as const])] },
      );
    } else {
      try {
        checkPasswordPolicy(normalizeEmail(email), password);
      } catch {
        throw new Error('BOOTSTRAP_ADMIN_PASSWORD does not meet the password policy');
      }
      await this.create(normalizeEmail(email), password, ['admin']);
    }
    this.logger.log({ msg: 'bootstrap admin ensured' });
    this.events.record({ type: 'auth.bootstrap_admin', outcome: 'allowed' });
  }

  private async create(email: string, password: string, roles: Role[]): Promise<Account> {
    const account = this.accounts.create({
      id: randomUUID(),
      email,
      passwordHash: await this.hasher.hash(password),
      roles,
    });
    try {
      await this.accounts.insert(account);
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
