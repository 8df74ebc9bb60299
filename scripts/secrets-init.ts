import 'reflect-metadata';

import { resolve } from 'node:path';

import { NATS_USERS } from '@portcullis/contracts';
import { loadConfig, SERVICE_NAMES } from '@portcullis/core';
import { ensureDevelopmentCertificates, ensureDevelopmentSecrets } from '@portcullis/crypto';

/**
 * Writes development secrets into SECRETS_DIR (default ./secrets): each service's Ed25519
 * message-signing key, the key that encrypts token signing keys, the trust file, and under
 * tls/ a development CA, the NATS server certificate and a NATS client certificate per
 * service and for the one-process `platform` (see ensureDevelopmentCertificates). Existing
 * keys are kept. Prints the names it wrote, never a value.
 */
const directory = resolve(loadConfig().secretsDir);
const written = [
  ...ensureDevelopmentSecrets(directory, SERVICE_NAMES),
  ...ensureDevelopmentCertificates(directory, NATS_USERS),
];
const listing = written.map((name) => `  ${name}\n`).join('');
process.stdout.write(
  written.length > 0
    ? `Wrote ${written.length} secret file(s) to ${directory}:\n${listing}`
    : `All development secrets already exist in ${directory}.\n`,
);
