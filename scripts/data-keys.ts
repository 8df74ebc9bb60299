import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { DataSource } from 'typeorm';

import { Account } from '../apps/auth/src/accounts/account.entity';
import { Invoice } from '../apps/billing/src/invoices/invoice.entity';
import { Payment } from '../apps/billing/src/payments/payment.entity';
import {
  type AppConfig,
  DEFAULT_BATCH_SIZE,
  type VersionCount,
  FieldEncryption,
  type ServiceName,
  buildDataSourceOptions,
  closeEmbeddedDatabases,
  loadConfig,
  resealTable,
  secretSourceOptions,
  versionCounts,
} from '@portcullis/core';
import {
  type KeyringFile,
  SECRET_NAMES,
  LayeredSecrets,
  SecretFiles,
  type SecretsProvider,
  VaultTransitKeys,
  addKeyringVersion,
  openSecrets,
  retireKeyringVersions,
} from '@portcullis/crypto';

/**
 * Data-key rotation, run next to the apps while they serve (same settings as the apps):
 *
 *   add [data|blind-index]         add a key version and make it current
 *   rotate-data [--batch-size=N]   reseal every sealed field and blind index under the
 *                                  newest versions, in short batches
 *   retire [data|blind-index]      stop older versions from decrypting; refused while any
 *          [--trim]                record still uses them (--trim also deletes their keys)
 *   status                         records per key version
 *
 * Prints names, versions and counts, never a key or a value.
 */

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
const SEALED_TABLES: ReadonlyArray<{ service: ServiceName; entities: Function[] }> = [
  { service: 'auth', entities: [Account] },
  { service: 'billing', entities: [Invoice, Payment] },
];

/** The migrations that create each service's sealed columns. */
const SEALING_MIGRATIONS: Record<string, string> = {
  auth: 'SealAccountEmails1764806800000',
  billing: 'SealPaymentData1764806900000',
};

type Keyring = 'data' | 'blind-index';

const print = (line: string): void => void process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      'batch-size': { type: 'string' },
      service: { type: 'string', multiple: true },
      trim: { type: 'boolean' },
      'no-wait': { type: 'boolean' },
    },
  });
  const [command, which = 'data'] = positionals;
  if (which !== 'data' && which !== 'blind-index') throw new Error('keyring: data or blind-index');
  const config = loadConfig();
  const secrets = await openSecrets(secretSourceOptions(config));
  const encryption = await FieldEncryption.open(config, secrets);
  const services = values.service ?? SEALED_TABLES.map((entry) => entry.service);

  switch (command) {
    case 'add':
      return addVersion(config, secrets, encryption, which);
    case 'rotate-data':
      return rotateData(config, encryption, services, {
        batchSize: Number(values['batch-size'] ?? DEFAULT_BATCH_SIZE),
        wait: !values['no-wait'],
      });
    case 'retire':
      return retire(config, secrets, encryption, services, which, values.trim ?? false);
    case 'status':
      return status(config, encryption, services);
    default:
      print('usage: data-keys <add|rotate-data|retire|status> [data|blind-index] [options]');
      return 2;
  }
}

async function addVersion(
  config: AppConfig,
  secrets: SecretsProvider,
  encryption: FieldEncryption,
  which: Keyring,
): Promise<number> {
  const keys = encryption.cipher.keys;
  if (which === 'data' && keys instanceof VaultTransitKeys) {
    await keys.rotate();
    print(`Vault transit key rotated: version ${keys.currentVersion()} is current.`);
  } else {
    const name = keyringName(which);
    const file = updateKeyringFile(config, secrets, name, (keyring) => addKeyringVersion(keyring));
    print(`${name}: version ${file.current} added and current.`);
  }
  print(
    `Every process loads it within KEY_RELOAD_SECONDS (${config.keyReloadSeconds} s). ` +
      'Then run `npm run keys:rotate-data`.',
  );
  return 0;
}

async function rotateData(
  config: AppConfig,
  encryption: FieldEncryption,
  services: readonly string[],
  options: { batchSize: number; wait: boolean },
): Promise<number> {
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
    throw new Error('--batch-size must be a whole number above 0');
  }
  if (options.wait) await waitForEveryProcess(config, encryption, services);
  return withTables(config, encryption, services, async (tables) => {
    for (let pass = 1; pass <= 5; pass += 1) {
      let stale = 0;
      for (const { dataSource, entity } of tables) {
        for (const report of await resealTable(dataSource, entity, encryption, options.batchSize)) {
          print(
            `pass ${pass}: ${report.table}.${report.column}: ${report.updated} resealed` +
              (report.skipped > 0 ? `, ${report.skipped} changed meanwhile (next pass)` : ''),
          );
          stale += report.skipped;
        }
      }
      if (stale === 0 && (await allCurrent(tables, encryption))) {
        print('Every record is under the current key versions.');
        return 0;
      }
    }
    print('Some records are still under older versions; run keys:rotate-data again.');
    return 1;
  });
}

async function retire(
  config: AppConfig,
  secrets: SecretsProvider,
  encryption: FieldEncryption,
  services: readonly string[],
  which: Keyring,
  trim: boolean,
): Promise<number> {
  return withTables(config, encryption, services, async (tables) => {
    const current =
      which === 'data'
        ? encryption.cipher.keys.currentVersion()
        : encryption.blindIndex().currentVersion;
    const behind = (await countsOf(tables)).filter(
      (count) => count.keys === which && count.version < current,
    );
    if (behind.length > 0) {
      for (const count of behind) {
        print(
          `${count.table}.${count.column}: ${count.rows} record(s) under version ${count.version}`,
        );
      }
      print('Not retired: run `npm run keys:rotate-data` first.');
      return 1;
    }
    const keys = encryption.cipher.keys;
    if (which === 'data' && keys instanceof VaultTransitKeys) {
      await keys.retireBelow(current);
    } else {
      updateKeyringFile(config, secrets, keyringName(which), (keyring) =>
        retireKeyringVersions(keyring, current, trim),
      );
    }
    print(
      `${keyringName(which)}: versions below ${current} no longer decrypt` +
        (trim ? ' and their keys are deleted.' : '.'),
    );
    return 0;
  });
}

async function status(
  config: AppConfig,
  encryption: FieldEncryption,
  services: readonly string[],
): Promise<number> {
  const keys = encryption.cipher.keys;
  print(
    `data keys (${keys.kind}): current ${keys.currentVersion()}, min ${keys.minDecryptVersion()}`,
  );
  if (usesBlindIndex(services)) {
    const index = encryption.blindIndex();
    print(`blind-index keys: current ${index.currentVersion}, min ${index.minVersion}`);
  }
  return withTables(config, encryption, services, async (tables) => {
    for (const count of await countsOf(tables)) {
      print(`${count.table}.${count.column}: version ${count.version}: ${count.rows}`);
    }
    return 0;
  });
}

interface Table {
  readonly dataSource: DataSource;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  readonly entity: Function;
}

/** Opens the sealed tables of the chosen services, without running any migration. */
async function withTables(
  config: AppConfig,
  encryption: FieldEncryption,
  services: readonly string[],
  work: (tables: Table[]) => Promise<number>,
): Promise<number> {
  const dataSources: DataSource[] = [];
  try {
    const tables: Table[] = [];
    for (const { service, entities } of SEALED_TABLES.filter((s) => services.includes(s.service))) {
      const options = buildDataSourceOptions(
        config,
        { service, entities, migrations: [] },
        encryption,
      );
      const dataSource = new DataSource({ ...options, migrations: [] });
      await dataSource.initialize();
      dataSources.push(dataSource);
      const [{ migrations }] = await dataSource.query<Array<{ migrations: string | null }>>(
        'SELECT to_regclass($1)::text AS migrations',
        [`"${service}"."migrations"`],
      );
      const migrated = migrations
        ? await dataSource.query<Array<{ name: string }>>(
            `SELECT name FROM "${service}"."migrations" WHERE name = $1`,
            [SEALING_MIGRATIONS[service]],
          )
        : [];
      if (migrated.length === 0) {
        throw new Error(`start ${service} once first, so that its migrations seal its tables`);
      }
      tables.push(...entities.map((entity) => ({ dataSource, entity })));
    }
    return await work(tables);
  } finally {
    for (const dataSource of dataSources) await dataSource.destroy();
    await closeEmbeddedDatabases();
  }
}

async function countsOf(tables: readonly Table[]): Promise<VersionCount[]> {
  const counts: VersionCount[] = [];
  for (const { dataSource, entity } of tables)
    counts.push(...(await versionCounts(dataSource, entity)));
  return counts;
}

async function allCurrent(tables: readonly Table[], encryption: FieldEncryption): Promise<boolean> {
  const current = (keys: Keyring): number =>
    keys === 'data'
      ? encryption.cipher.keys.currentVersion()
      : encryption.blindIndex().currentVersion;
  return (await countsOf(tables)).every((count) => count.version >= current(count.keys));
}

/** Only auth's tables have blind indexes; a process for billing alone holds no index keys. */
function usesBlindIndex(services: readonly string[]): boolean {
  return services.includes('auth');
}

/**
 * Waits until the newest versions are older than one reload interval, so every running
 * process uses them: a process that still wrote or looked up under an older version would
 * otherwise undo part of the pass (or miss an account reindexed under the new one).
 */
async function waitForEveryProcess(
  config: AppConfig,
  encryption: FieldEncryption,
  services: readonly string[],
): Promise<void> {
  // Only a keyring with older versions still in use can have records to move.
  const keys = encryption.cipher.keys;
  const created: Array<Date | undefined> = [];
  if (keys.currentVersion() > keys.minDecryptVersion()) {
    created.push(keys.versionCreatedAt(keys.currentVersion()));
  }
  if (usesBlindIndex(services)) {
    const index = encryption.blindIndex();
    if (index.currentVersion > index.minVersion) {
      created.push(index.versionCreatedAt(index.currentVersion));
    }
  }
  // A version of unknown age may be brand new: wait a whole interval for it.
  const times = created.map((date) => date?.getTime() ?? Date.now());
  const readyAt = Math.max(0, ...times) + (config.keyReloadSeconds + 1) * 1000;
  const waitMs = readyAt - Date.now();
  if (waitMs > 0) {
    print(`Waiting ${Math.ceil(waitMs / 1000)} s until every process has loaded the new keys.`);
    await sleep(waitMs);
  }
}

function keyringName(which: Keyring): string {
  return which === 'data' ? SECRET_NAMES.dataKeys : SECRET_NAMES.blindIndexKeys;
}

/**
 * Rewrites a keyring file in SECRETS_DIR in place (the same file, so a container that has it
 * bind-mounted sees the change). A keyring given another way is changed where it lives.
 */
function updateKeyringFile(
  config: AppConfig,
  secrets: SecretsProvider,
  name: string,
  change: (file: KeyringFile) => KeyringFile,
): KeyringFile {
  const files = new SecretFiles(config.secretsDir);
  const source = secrets instanceof LayeredSecrets ? secrets.sourceOf(name) : secrets.source;
  if (source !== 'files' || !files.has(name)) {
    throw new Error(
      `${name} is read from ${source ?? 'nowhere'}, not SECRETS_DIR: change it there`,
    );
  }
  const path = files.pathOf(name);
  const updated = change(JSON.parse(readFileSync(path, 'utf8')) as KeyringFile);
  writeFileSync(path, `${JSON.stringify(updated, null, 2)}\n`, { mode: 0o600 });
  return updated;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`data-keys: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
