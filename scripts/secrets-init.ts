import { resolve } from 'node:path';

import { loadConfig, SERVICE_NAMES } from '@portcullis/core';
import { ensureDevelopmentSecrets } from '@portcullis/crypto';

/**
 * Writes development secrets into SECRETS_DIR (default ./secrets): each service's Ed25519
 * message-signing key, the RS256 token signing key and the trust file. Existing keys are
 * kept. Prints the names it wrote, never a value.
 */
const directory = resolve(loadConfig().secretsDir);
const written = ensureDevelopmentSecrets(directory, SERVICE_NAMES);
const listing = written.map((name) => `  ${name}\n`).join('');
process.stdout.write(
  written.length > 0
    ? `Wrote ${written.length} secret file(s) to ${directory}:\n${listing}`
    : `All development secrets already exist in ${directory}.\n`,
);
