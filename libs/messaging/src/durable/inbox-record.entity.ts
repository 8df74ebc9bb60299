import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * A message this service has applied, recorded in the same transaction as its effect, so a
 * redelivered or replayed message changes nothing, however late it comes.
 */
@Entity({ name: 'inbox' })
export class InboxRecord {
  @PrimaryColumn({ name: 'message_id', type: 'uuid' })
  messageId!: string;

  @Column({ type: 'varchar', length: 64 })
  type!: string;

  @Column({ type: 'varchar', length: 16 })
  sender!: string;

  @CreateDateColumn({ name: 'received_at', type: 'timestamptz' })
  receivedAt!: Date;
}
