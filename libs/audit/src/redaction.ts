/** What a redacted value is replaced with: the field stays, so a reader sees it was there. */
export const REDACTED = '[redacted]';

/**
 * Names of detail fields whose values never enter a record, whatever their casing: tokens
 * (access, refresh, payment), passwords, secrets and keys, authorization headers, cookies,
 * signatures and card data.
 */
export const REDACTED_FIELDS: readonly RegExp[] = [
  /token/i,
  /pass(word|wd|phrase)?/i,
  /secret/i,
  /key/i,
  /authori[sz]ation/i,
  /cookie/i,
  /signature/i,
  /card|cvc|cvv/i,
  /payment_?method/i,
];

/** Values that are secrets whatever field holds them: bearer credentials and JWTs. */
const SECRET_VALUES = [/^bearer\s/i, /^eyJ[\w-]*\.[\w-]+\.[\w-]*$/];

export type DetailValue = string | number | boolean | null;

/** Whether a detail field of this name is withheld from records. */
export function isRedactedField(name: string): boolean {
  return REDACTED_FIELDS.some((pattern) => pattern.test(name));
}

/**
 * The details of a record with every secret replaced by {@link REDACTED}; absent values are
 * dropped and keys sorted, so the same facts always give the same details.
 */
export function redactDetails(
  details: Readonly<Record<string, DetailValue | undefined>> | undefined,
): Record<string, DetailValue> | undefined {
  if (!details) return undefined;
  const kept: Record<string, DetailValue> = {};
  for (const name of Object.keys(details).sort()) {
    const value = details[name];
    if (value === undefined) continue;
    const secret =
      isRedactedField(name) ||
      (typeof value === 'string' && SECRET_VALUES.some((pattern) => pattern.test(value)));
    kept[name] = secret ? REDACTED : value;
  }
  return Object.keys(kept).length > 0 ? kept : undefined;
}
