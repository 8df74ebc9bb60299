import {
  EventSubscriber,
  type EntitySubscriberInterface,
  type InsertEvent,
  type LoadEvent,
  type ObjectLiteral,
  type UpdateEvent,
} from 'typeorm';

import type { FieldEncryption } from './field-encryption';
import { sealedFieldsOf } from './sealed-column';
import { openRow, sealRow } from './sealed-rows';

/**
 * Seals and opens the fields entities declare with `@SealedColumn`, and keeps their
 * `@BlindIndexColumn`s current: before insert, before `save()` updates, after load. Returns a
 * class because TypeORM instantiates subscribers itself.
 *
 * TypeORM runs update hooks only for rows whose columns changed, and a partial update
 * (`update(criteria, values)`) does not say which row it changes: to change a sealed field
 * after insert, pass `FieldEncryption.sealedValues(...)` to `update()`.
 */
export function sealedFieldsSubscriber(
  encryption: FieldEncryption,
): new () => EntitySubscriberInterface {
  class SealedFieldsSubscriber implements EntitySubscriberInterface {
    beforeInsert(event: InsertEvent<ObjectLiteral>): Promise<void> | void {
      const fields = sealedFieldsOf(event.metadata.target);
      if (fields && event.entity) return sealRow(encryption, event.metadata, fields, event.entity);
    }

    beforeUpdate(event: UpdateEvent<ObjectLiteral>): Promise<void> | void {
      const fields = sealedFieldsOf(event.metadata.target);
      if (fields && event.entity) return sealRow(encryption, event.metadata, fields, event.entity);
    }

    afterLoad(entity: ObjectLiteral, event?: LoadEvent<ObjectLiteral>): Promise<void> | void {
      const fields = event && sealedFieldsOf(event.metadata.target);
      if (fields) return openRow(encryption, event.metadata, fields, entity);
    }
  }
  // TypeORM takes only classes registered as subscribers from a data source's options.
  EventSubscriber()(SealedFieldsSubscriber);
  return SealedFieldsSubscriber;
}
