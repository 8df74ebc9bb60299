import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

import type { Role } from '@portcullis/contracts';
import { BlindIndexColumn, SealedColumn } from '@portcullis/core';

/** Purpose of the blind index that finds an account by its (normalized) email. */
export const ACCOUNT_EMAIL_INDEX = 'auth.accounts.email';

@Entity({ schema: 'auth', name: 'accounts' })
export class Account {
  @PrimaryColumn('uuid')
  id!: string;

  /** Normalized email; never stored as it is, only sealed and as a blind index. */
  email!: string;

  @SealedColumn({ name: 'email_sealed', plaintext: 'email' })
  emailSealed!: Buffer;

  /** Unique: one account per email, found with `In(blindIndex.candidates(...))`. */
  @BlindIndexColumn({
    name: 'email_index',
    source: 'email',
    purpose: ACCOUNT_EMAIL_INDEX,
    unique: true,
  })
  emailIndex!: Buffer;

  @Column({ name: 'password_hash', type: 'text' })
  passwordHash!: string;

  @Column({ type: 'text', array: true })
  roles!: Role[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
