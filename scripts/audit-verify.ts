import { DataSource } from 'typeorm';

import { verifyStoredChain } from '../apps/auth/src/audit-trail/audit-chain';
import { buildDataSourceOptions, closeEmbeddedDatabases, loadConfig } from '@portcullis/core';

/**
 * `npm run audit:verify`: walks the whole audit hash chain in the database the apps use
 * (`DATABASE_URL`, else the embedded one under `DATA_DIR`) and prints the result as JSON.
 * Exits 0 when every record checks out, 1 naming the first broken record, 2 when the chain
 * cannot be read.
 */
async function main(): Promise<number> {
  const config = loadConfig();
  const options = buildDataSourceOptions(config, { service: 'auth', entities: [], migrations: [] });
  const db = new DataSource({
    ...options,
    ...{ name: 'audit-verify', schema: 'audit', applicationName: 'portcullis-audit-verify' },
  });
  await db.initialize();
  try {
    const [{ records }] = await db.query<Array<{ records: string | null }>>(
      "SELECT to_regclass('audit.records')::text AS records",
    );
    if (!records) throw new Error('no audit trail in this database: start auth once first');
    const result = await verifyStoredChain((sql, parameters) => db.query(sql, parameters));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    if (result.firstBroken) {
      const { sequence, id, reason } = result.firstBroken;
      process.stderr.write(
        `audit:verify: the chain breaks at record ${sequence} (${id ?? 'missing'}): ${reason}\n`,
      );
    }
    return result.ok ? 0 : 1;
  } finally {
    await db.destroy();
    await closeEmbeddedDatabases();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `audit:verify: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(2);
  },
);
