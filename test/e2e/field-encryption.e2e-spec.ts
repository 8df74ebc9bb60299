import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from 'pg';

import { Api } from '../support/api';
import { Deployment, type ShapeName, availableShapes, createDatabase } from '../support/deployment';

const ROOT = resolve(process.env.PORTCULLIS_ROOT ?? process.cwd());
const SCHEMAS = ['auth', 'orders', 'billing'];
const DETAILS = {
  name: 'Ada Lovelace',
  addressLines: ['12 St James Square'],
  postalCode: 'SW1Y 4JH',
  city: 'London',
  country: 'GB',
};
const GENERIC_500 = {
  statusCode: 500,
  error: 'Internal Server Error',
  message: expect.any(String),
  correlationId: expect.any(String),
};

type Customer = Awaited<ReturnType<Api['customer']>>;

/** Every row of every app table as JSON text: bytea shows as hex, so plaintext shows as is. */
type RowDump = (sql: string) => Promise<string[]>;

async function dumpAllRows(query: RowDump): Promise<string> {
  const tables = await query(
    `SELECT json_build_object('s', table_schema, 't', table_name)::text FROM information_schema.tables
      WHERE table_schema IN ('${SCHEMAS.join("','")}') AND table_type = 'BASE TABLE'`,
  );
  const rows: string[] = [];
  for (const text of tables) {
    const { s, t } = JSON.parse(text) as { s: string; t: string };
    rows.push(...(await query(`SELECT row_to_json(r)::text FROM "${s}"."${t}" r`)));
  }
  return rows.join('\n');
}

/** Places an order and pays its invoice with billing details; returns the paid invoice. */
async function orderAndPay(api: Api, customer: Customer, details = DETAILS): Promise<any> {
  const order = await api.post('/orders', {
    token: customer.token,
    body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
    headers: { 'idempotency-key': randomUUID() },
  });
  if (order.status !== 201) throw new Error(`order answered ${order.status}`);
  const invoice = await api.invoiceFor(order.body.id, customer.token);
  const paid = await api.post(`/billing/invoices/${invoice.id}/pay`, {
    token: customer.token,
    body: { paymentMethod: { token: 'tok_visa' }, billingDetails: details },
    headers: { 'idempotency-key': randomUUID() },
  });
  if (paid.status !== 200) throw new Error(`payment answered ${paid.status}`);
  return paid.body;
}

/** Runs `node dist/scripts/data-keys.js ...` beside the apps, with their settings. */
function dataKeys(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['dist/scripts/data-keys.js', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => done({ code, output }));
  });
}

/** Starts one built app and waits for it to exit (it is expected to refuse to start). */
function startAndWaitForExit(
  app: string,
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child: ChildProcess = spawn(process.execPath, [`dist/apps/${app}/src/main.js`], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${app} was still running after 60 s:\n${output}`));
    }, 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

/** Every secret value in a SECRETS_DIR: file contents and each key of the keyrings. */
function secretValues(directory: string): string[] {
  const values: string[] = [];
  const walk = (folder: string): void => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const text = readFileSync(path, 'utf8');
      if (name.endsWith('.json') && text.includes('"versions"')) {
        const keyring = JSON.parse(text) as { versions: Array<{ key: string }> };
        values.push(...keyring.versions.map((version) => version.key));
      } else if (!name.endsWith('.json') && !name.endsWith('.crt')) {
        values.push(text.trim());
        // Each line of a PEM body too, in case a message printed only part of it.
        values.push(
          ...text.split('\n').filter((line) => line.length > 40 && !line.startsWith('-')),
        );
      }
    }
  };
  walk(directory);
  return values.filter((value) => value.length >= 16);
}

describe.each(availableShapes())('field encryption and secrets, %s shape', (shape: ShapeName) => {
  describe('when a required secret is missing', () => {
    let secretsDir: string;
    let workDir: string;

    beforeAll(() => {
      workDir = mkdtempSync(join(tmpdir(), 'portcullis-e2e-missing-secret-'));
      secretsDir = join(workDir, 'secrets');
      const init = spawn(process.execPath, ['dist/scripts/secrets-init.js'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', SECRETS_DIR: secretsDir },
        stdio: 'ignore',
      });
      return new Promise<void>((done) => init.on('exit', () => done()));
    });

    afterAll(() => {
      rmSync(workDir, { recursive: true, force: true });
    });

    it.each([
      ['billing', 'data-keys.json'],
      ['auth', 'blind-index-keys.json'],
    ])('stops %s at start-up naming %s, printing no secret', async (app, secret) => {
      const incomplete = join(workDir, `without-${secret}`);
      cpSync(secretsDir, incomplete, { recursive: true });
      rmSync(join(incomplete, secret));

      const { code, output } = await startAndWaitForExit(app, {
        NODE_ENV: 'production',
        SECRETS_DIR: incomplete,
        DATA_DIR: join(workDir, `data-${app}`),
        CREATE_MISSING_SECRETS: 'false',
        PORT: '0',
        LOG_LEVEL: 'warn',
      });

      expect(code).toBe(1);
      expect(output).toContain(`${app} failed to start: Missing secret "${secret}"`);
      for (const value of secretValues(incomplete)) expect(output).not.toContain(value);
    });
  });

  if (shape === 'embedded') {
    describe('at rest in the embedded database', () => {
      let workDir: string;
      let deployment: Deployment | undefined;
      let ada: Customer;

      beforeAll(async () => {
        workDir = mkdtempSync(join(tmpdir(), 'portcullis-e2e-at-rest-'));
        deployment = await Deployment.start(shape, { DATA_DIR: join(workDir, 'data') });
        const api = new Api(deployment);
        ada = await api.customer('ada');
        await orderAndPay(api, ada);
        await deployment.stop();
        deployment = undefined;
      }, 180_000);

      afterAll(async () => {
        await deployment?.stop();
        rmSync(workDir, { recursive: true, force: true });
      });

      it('holds no plaintext email, billing detail or payment reference in any row', async () => {
        const db = await PGlite.create({ dataDir: join(workDir, 'data', 'pglite') });
        try {
          const dump = await dumpAllRows(async (sql) =>
            (await db.query<Record<string, string>>(sql)).rows.map((row) => Object.values(row)[0]),
          );

          expect(dump).toContain('"email_sealed"');
          expect(dump).not.toContain(ada.email);
          expect(dump).not.toContain(DETAILS.name);
          expect(dump).not.toContain(DETAILS.postalCode);
          expect(dump).not.toContain('sim_ch_');
        } finally {
          await db.close();
        }
      });
    });
    return;
  }

  describe('on PostgreSQL', () => {
    let deployment: Deployment;
    let api: Api;
    let database: { url: string; drop: () => Promise<void> };
    let db: Client;
    let ada: Customer;
    let bob: Customer;
    let adaInvoice: any;
    let bobInvoice: any;
    const rows = async (sql: string, values: unknown[] = []): Promise<any[]> =>
      (await db.query(sql, values)).rows;

    beforeAll(async () => {
      database = await createDatabase('portcullis_e2e_sealed');
      deployment = await Deployment.start(shape, {
        DATABASE_URL: database.url,
        KEY_RELOAD_SECONDS: '1',
      });
      api = new Api(deployment);
      db = new Client({ connectionString: database.url });
      await db.connect();
      ada = await api.customer('ada');
      bob = await api.customer('bob');
      adaInvoice = await orderAndPay(api, ada);
      bobInvoice = await orderAndPay(api, bob, { ...DETAILS, name: 'Bob Babbage' });
    }, 180_000);

    afterAll(async () => {
      await db?.end();
      await deployment?.stop();
      await database?.drop();
    });

    it('answers the owner in plaintext, billing details included', async () => {
      expect(adaInvoice).toMatchObject({ status: 'paid', billingDetails: DETAILS });
      const listed = await api.get(`/billing/invoices?orderId=${adaInvoice.orderId}`, {
        token: ada.token,
      });
      expect(listed.status).toBe(200);
      expect(listed.body).toEqual([adaInvoice]);
      const me = await api.get('/auth/me', { token: ada.token });
      expect(me.body.email).toBe(ada.email);
    });

    it('holds no plaintext email, billing detail or payment reference in any row', async () => {
      const dump = await dumpAllRows(async (sql) =>
        (await rows(sql)).map((row) => Object.values(row)[0] as string),
      );

      expect(dump).toContain('"email_sealed"');
      for (const secret of [
        ada.email,
        bob.email,
        DETAILS.name,
        'Bob Babbage',
        DETAILS.postalCode,
      ]) {
        expect(dump).not.toContain(secret);
      }
      expect(dump).not.toContain(ada.email.split('@')[0]);
      expect(dump).not.toContain('sim_ch_');
    });

    describe('when a sealed field is moved to another row or altered', () => {
      it('refuses to serve a row holding another row’s email, with a generic 500', async () => {
        const [saved] = await rows('SELECT email_sealed FROM auth.accounts WHERE id = $1', [
          bob.id,
        ]);
        await db.query(
          `UPDATE auth.accounts SET email_sealed =
             (SELECT email_sealed FROM auth.accounts WHERE id = $1) WHERE id = $2`,
          [ada.id, bob.id],
        );

        const me = await api.get('/auth/me', { token: bob.token });

        expect(me.status).toBe(500);
        expect(me.body).toEqual(GENERIC_500);
        expect(JSON.stringify(me.body)).not.toContain(ada.email);
        expect(deployment.logs()).toContain('stored field failed its integrity check');
        await db.query('UPDATE auth.accounts SET email_sealed = $1 WHERE id = $2', [
          saved.email_sealed,
          bob.id,
        ]);
        expect((await api.get('/auth/me', { token: bob.token })).body.email).toBe(bob.email);
      });

      it('refuses an invoice holding another invoice’s billing details', async () => {
        const [saved] = await rows(
          'SELECT billing_details_sealed FROM billing.invoices WHERE id = $1',
          [bobInvoice.id],
        );
        await db.query(
          `UPDATE billing.invoices SET billing_details_sealed =
             (SELECT billing_details_sealed FROM billing.invoices WHERE id = $1) WHERE id = $2`,
          [adaInvoice.id, bobInvoice.id],
        );

        const invoice = await api.get(`/billing/invoices/${bobInvoice.id}`, { token: bob.token });
        const listed = await api.get('/billing/invoices', { token: bob.token });

        expect(invoice.status).toBe(500);
        expect(invoice.body).toEqual(GENERIC_500);
        expect(JSON.stringify(invoice.body)).not.toContain(DETAILS.name);
        expect(listed.status).toBe(500);
        expect(listed.body).toEqual(GENERIC_500);
        await db.query('UPDATE billing.invoices SET billing_details_sealed = $1 WHERE id = $2', [
          saved.billing_details_sealed,
          bobInvoice.id,
        ]);
      });

      it('refuses a field with one byte changed rather than answer garbage', async () => {
        await db.query(
          `UPDATE billing.invoices SET billing_details_sealed = set_byte(billing_details_sealed,
             length(billing_details_sealed) - 20, get_byte(billing_details_sealed,
             length(billing_details_sealed) - 20) # 1) WHERE id = $1`,
          [adaInvoice.id],
        );

        const invoice = await api.get(`/billing/invoices/${adaInvoice.id}`, { token: ada.token });

        expect(invoice.status).toBe(500);
        expect(invoice.body).toEqual(GENERIC_500);
        await db.query(
          `UPDATE billing.invoices SET billing_details_sealed = set_byte(billing_details_sealed,
             length(billing_details_sealed) - 20, get_byte(billing_details_sealed,
             length(billing_details_sealed) - 20) # 1) WHERE id = $1`,
          [adaInvoice.id],
        );
        const again = await api.get(`/billing/invoices/${adaInvoice.id}`, { token: ada.token });
        expect(again.body.billingDetails).toEqual(DETAILS);
      });
    });

    describe('when the keys rotate while orders keep flowing', () => {
      const scriptEnv = (): Record<string, string> => ({
        SECRETS_DIR: deployment.secretsDir,
        DATABASE_URL: database.url,
        KEY_RELOAD_SECONDS: '1',
      });
      const versions = async (): Promise<number[]> => {
        const found = await rows(`
          SELECT substring(email_sealed from 2 for 4) AS v FROM auth.accounts
          UNION SELECT substring(email_index from 1 for 4) FROM auth.accounts
          UNION SELECT substring(payment_reference_sealed from 2 for 4) FROM billing.invoices
            WHERE payment_reference_sealed IS NOT NULL
          UNION SELECT substring(billing_details_sealed from 2 for 4) FROM billing.invoices
            WHERE billing_details_sealed IS NOT NULL
          UNION SELECT substring(response_body_sealed from 2 for 4) FROM billing.payments`);
        return found.map((row) => (row.v as Buffer).readUInt32BE(0)).sort();
      };
      let oldEmail: Buffer;

      it('reseals every record under the new versions; every old record stays readable', async () => {
        [{ email_sealed: oldEmail }] = await rows(
          'SELECT email_sealed FROM auth.accounts WHERE id = $1',
          [ada.id],
        );
        expect(await versions()).toEqual([1]);
        let flowing = true;
        const outcomes: string[] = [];
        const flow = (async () => {
          const carol = await api.customer('carol');
          for (let round = 0; flowing || round < 3; round += 1) {
            try {
              await orderAndPay(api, carol, { ...DETAILS, name: `Carol ${round}` });
              if (round % 3 === 0) await api.customer(`dave${round}`);
              outcomes.push('ok');
            } catch (error) {
              outcomes.push(String(error));
            }
          }
        })();

        const added = await dataKeys(scriptEnv(), 'add');
        const indexAdded = await dataKeys(scriptEnv(), 'add', 'blind-index');
        const rotated = await dataKeys(scriptEnv(), 'rotate-data', '--batch-size=3');
        flowing = false;
        await flow;

        expect(added).toMatchObject({ code: 0 });
        expect(added.output).toContain('data-keys.json: version 2 added and current.');
        expect(indexAdded).toMatchObject({ code: 0 });
        expect(rotated.output).toContain('Every record is under the current key versions.');
        expect(rotated.code).toBe(0);
        expect(outcomes.length).toBeGreaterThanOrEqual(3);
        expect(outcomes.filter((outcome) => outcome !== 'ok')).toEqual([]);
        expect(await versions()).toEqual([2]);
        expect((await api.get('/auth/me', { token: ada.token })).body.email).toBe(ada.email);
        await api.login(ada.email, 'a long enough password 42');
        const invoice = await api.get(`/billing/invoices/${bobInvoice.id}`, { token: bob.token });
        expect(invoice.body.billingDetails).toEqual({ ...DETAILS, name: 'Bob Babbage' });
      });

      it('retires the old versions, after which a field sealed under them no longer opens', async () => {
        const retired = await dataKeys(scriptEnv(), 'retire', '--trim');
        const indexRetired = await dataKeys(scriptEnv(), 'retire', 'blind-index');
        expect(retired).toMatchObject({ code: 0 });
        expect(indexRetired).toMatchObject({ code: 0 });
        await new Promise((wait) => setTimeout(wait, 2500));

        expect((await api.get('/auth/me', { token: ada.token })).body.email).toBe(ada.email);
        await api.login(ada.email, 'a long enough password 42');
        await db.query('UPDATE auth.accounts SET email_sealed = $1 WHERE id = $2', [
          oldEmail,
          ada.id,
        ]);
        expect((await api.get('/auth/me', { token: ada.token })).status).toBe(500);
        const status = await dataKeys(scriptEnv(), 'status');
        expect(status.output).toContain('data keys (secrets): current 2, min 2');
        const keyring = readFileSync(join(deployment.secretsDir, 'data-keys.json'), 'utf8');
        expect(JSON.parse(keyring).versions).toHaveLength(1);
      });
    });
  });
});
