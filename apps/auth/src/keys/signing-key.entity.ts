import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

import type { PublicJwk } from '@portcullis/contracts';

/**
 * A token signing key. The private half is stored sealed (AES-256-GCM, bound to its kid).
 * Active while `retiredAt` is null; retired keys still verify until `withdrawnAt` (or until
 * no token they signed can be unexpired).
 */
@Entity({ schema: 'auth', name: 'signing_keys' })
export class SigningKey {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  kid!: string;

  @Column({ type: 'varchar', length: 8 })
  algorithm!: 'RS256';

  @Column({ name: 'public_jwk', type: 'jsonb' })
  publicJwk!: PublicJwk;

  @Column({ name: 'private_key_sealed', type: 'bytea' })
  privateKeySealed!: Buffer;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'retired_at', type: 'timestamptz', nullable: true })
  retiredAt!: Date | null;

  @Column({ name: 'withdrawn_at', type: 'timestamptz', nullable: true })
  withdrawnAt!: Date | null;
}
