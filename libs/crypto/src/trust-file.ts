import { type KeyObject, createPublicKey } from 'node:crypto';

import { serviceKeyId } from './key-ids';

/** Whether a trusted key is the one its service signs with, or the one it signed with before. */
export type TrustedKeyStatus = 'current' | 'previous';

/** One entry of the trust file: a service's public message-signing key. */
export interface TrustedKeyEntry {
  kid: string;
  service: string;
  /** Absent in version 1 files, where every listed key is trusted alike. */
  status?: TrustedKeyStatus;
  /** Base64 of the SPKI DER encoding of an Ed25519 public key. */
  publicKey: string;
}

/**
 * `trust.json`: every service's public message-signing keys. Version 2 marks each service's
 * one `current` key and at most one `previous` key, which receivers still accept while a
 * rotation is under way; version 1 lists keys without a status.
 */
export interface TrustFile {
  version: 1 | 2;
  keys: TrustedKeyEntry[];
}

/** A trust file entry whose key was decoded and checked against its kid. */
export interface ParsedTrustedKey {
  readonly kid: string;
  readonly service: string;
  readonly status: TrustedKeyStatus;
  readonly publicKey: KeyObject;
}

/** Why a trust file was refused; names entries by kid, never shows key material. */
export class TrustFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrustFileError';
  }
}

const KID_PATTERN = /^[a-z]+-[0-9a-f]{16}$/;
const ENTRY_FIELDS = new Set(['kid', 'service', 'status', 'publicKey']);

/**
 * Parses and checks a trust file completely: its shape, every key (Ed25519, matching its kid,
 * of a service in `services`), and in version 2 one current and at most one previous key per
 * service. Throws {@link TrustFileError} on the first problem.
 */
export function parseTrustFile(text: string, services: readonly string[]): ParsedTrustedKey[] {
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch {
    throw new TrustFileError('the trust file is not JSON');
  }
  if (typeof file !== 'object' || file === null || Array.isArray(file)) {
    throw new TrustFileError('the trust file is not a JSON object');
  }
  const { version, keys } = file as Record<string, unknown>;
  if (version !== 1 && version !== 2) throw new TrustFileError('the trust file has no version');
  if (!Array.isArray(keys)) throw new TrustFileError('the trust file lists no keys');

  const parsed: ParsedTrustedKey[] = [];
  for (const entry of keys as unknown[]) {
    parsed.push(parseEntry(entry, version, services));
  }
  const kids = new Set(parsed.map((key) => key.kid));
  if (kids.size !== parsed.length) throw new TrustFileError('the trust file lists a kid twice');
  if (version === 2) {
    for (const service of new Set(parsed.map((key) => key.service))) {
      const of = (status: TrustedKeyStatus): number =>
        parsed.filter((key) => key.service === service && key.status === status).length;
      if (of('current') !== 1 || of('previous') > 1) {
        throw new TrustFileError(
          `the trust file must list one current and at most one previous key for ${service}`,
        );
      }
    }
  }
  return parsed;
}

function parseEntry(entry: unknown, version: 1 | 2, services: readonly string[]): ParsedTrustedKey {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new TrustFileError('the trust file holds an entry that is not an object');
  }
  const e = entry as Record<string, unknown>;
  if (Object.keys(e).some((field) => !ENTRY_FIELDS.has(field))) {
    throw new TrustFileError('the trust file holds an entry with an unknown field');
  }
  if (
    typeof e.service !== 'string' ||
    !services.includes(e.service) ||
    typeof e.kid !== 'string' ||
    !KID_PATTERN.test(e.kid)
  ) {
    throw new TrustFileError(
      'trust file holds an entry with an unknown service or a malformed kid',
    );
  }
  const status = version === 1 ? (e.status ?? 'current') : e.status;
  if (status !== 'current' && status !== 'previous') {
    throw new TrustFileError(`trust file key ${e.kid} has no status (current or previous)`);
  }
  let publicKey: KeyObject;
  try {
    if (typeof e.publicKey !== 'string') throw new TypeError('not text');
    publicKey = createPublicKey({
      key: Buffer.from(e.publicKey, 'base64'),
      format: 'der',
      type: 'spki',
    });
  } catch {
    throw new TrustFileError(`trust file key ${e.kid} is not a public key`);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw new TrustFileError(`trust file key ${e.kid} is not an Ed25519 key`);
  }
  if (serviceKeyId(e.service, publicKey) !== e.kid) {
    throw new TrustFileError(`trust file key ${e.kid} does not match its public key`);
  }
  return { kid: e.kid, service: e.service, status, publicKey };
}

/** The trust file entry of a service's public key. */
export function trustEntry(
  service: string,
  publicKey: KeyObject,
  status: TrustedKeyStatus,
): TrustedKeyEntry {
  return {
    kid: serviceKeyId(service, publicKey),
    service,
    status,
    publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
  };
}

/** The text of a trust file, as the tools write it. */
export function formatTrustFile(file: TrustFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}
