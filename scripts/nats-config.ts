import 'reflect-metadata';

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import {
  CONTAINER_NATS_SERVER_CONFIG,
  type NatsServerConfigOptions,
  renderNatsServerConfig,
} from '@portcullis/contracts';
import { loadConfig } from '@portcullis/core';
import { TLS_NAMES } from '@portcullis/crypto';

/**
 * Writes a NATS server configuration from the message allow-list: TLS with verified client
 * certificates, one user per service and for `platform`, each limited to its subjects.
 *
 *   nats-config.js [file]           the containers' (default docker/nats/nats.conf)
 *   nats-config.js --local [file]   a local nats-server on 127.0.0.1:4222, with the
 *                                   certificates in SECRETS_DIR and JetStream under DATA_DIR
 *                                   (default DATA_DIR/nats.conf)
 */
const args = process.argv.slice(2);
const local = args[0] === '--local';
const [file] = local ? args.slice(1) : args;

let options: NatsServerConfigOptions = CONTAINER_NATS_SERVER_CONFIG;
let target = resolve(file ?? 'docker/nats/nats.conf');
if (local) {
  const config = loadConfig();
  const secret = (name: string): string => join(config.secretsDir, name);
  options = {
    serverName: 'portcullis-nats-local',
    host: '127.0.0.1',
    port: 4222,
    jetStreamStoreDir: join(config.dataDir, 'nats'),
    tls: {
      caFile: secret(TLS_NAMES.caCertificate),
      certFile: secret(TLS_NAMES.certificate(TLS_NAMES.natsServer)),
      keyFile: secret(TLS_NAMES.key(TLS_NAMES.natsServer)),
    },
  };
  target = resolve(file ?? join(config.dataDir, 'nats.conf'));
}

mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, renderNatsServerConfig(options));
process.stdout.write(`Wrote ${target}\n`);
