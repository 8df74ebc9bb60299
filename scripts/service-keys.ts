import 'reflect-metadata';

import { resolve } from 'node:path';

import { SERVICE_NAMES, loadConfig } from '@portcullis/core';
import { retireServiceKey, rotateServiceKey } from '@portcullis/crypto';

/**
 * `keys:rotate-service <service>` and `keys:retire-service <service>`: a service's Ed25519
 * message-signing key and the trust file in SECRETS_DIR. Prints key ids, never a key.
 */
const [command, service] = process.argv.slice(2);
const config = loadConfig();
const directory = resolve(config.secretsDir);
const reload = `${config.keyReloadSeconds} s`;

try {
  if (command === 'rotate' && service) {
    const change = rotateServiceKey(directory, service, SERVICE_NAMES);
    process.stdout.write(
      `${service}: new signing key ${change.current} is current, ${change.previous} is previous.\n` +
        `Every app trusts both within ${reload} (KEY_RELOAD_SECONDS), or at the first message ` +
        `signed with the new key.\nRestart ${service} to sign with the new key; once nothing ` +
        `signed with the old one is still in flight, run keys:retire-service -- ${service}.\n`,
    );
  } else if (command === 'retire' && service) {
    const change = retireServiceKey(directory, service, SERVICE_NAMES);
    process.stdout.write(
      `${service}: key ${change.retired} retired; ${change.current} stays current.\n` +
        `Every app refuses messages signed with it within ${reload}.\n`,
    );
  } else {
    process.stderr.write('usage: service-keys.js rotate|retire <auth|orders|billing>\n');
    process.exitCode = 2;
  }
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
