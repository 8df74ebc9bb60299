import { randomBytes } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { FieldCipher, FieldDecryptionError } from './field-cipher';
import { SecretFiles } from './secret-files';
import { openKeyEncryptionKeys, openSecrets } from './secret-sources';
import {
  VaultClient,
  VaultError,
  type VaultOptions,
  VaultSecrets,
  VaultTransitKeys,
} from './vault';

const TOKEN = 'hvs.test-token-not-real';

/**
 * A stand-in for Vault's HTTP API on 127.0.0.1: KV version 2 reads, and a transit key with
 * versions, `datakey/plaintext`, `decrypt`, `rotate` and `config`, answering as the API
 * documentation describes. Not Vault itself: this checks our requests and parsing.
 */
class FakeVault {
  readonly kv = new Map<string, string>();
  readonly requests: Array<{ method: string; url: string; namespace?: string }> = [];
  private readonly keys = new Map<number, Buffer>([[1, randomBytes(32)]]);
  private created = new Map<number, number>([[1, 1_700_000_000]]);
  private minDecryption = 1;
  private server?: Server;

  async start(): Promise<string> {
    this.server = createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {};
    const url = request.url ?? '';
    this.requests.push({
      method: request.method ?? '',
      url,
      namespace: request.headers['x-vault-namespace'] as string | undefined,
    });
    const reply = (status: number, value?: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(value === undefined ? '' : JSON.stringify(value));
    };
    if (request.headers['x-vault-token'] !== TOKEN)
      return reply(403, { errors: ['permission denied'] });

    const kv = /^\/v1\/secret\/data\/portcullis\/(.+)$/.exec(url);
    if (kv && request.method === 'GET') {
      const value = this.kv.get(decodeURIComponent(kv[1]));
      return value === undefined
        ? reply(404, { errors: [] })
        : reply(200, { data: { data: { value }, metadata: { version: 1 } } });
    }
    if (url === '/v1/transit/keys/portcullis-data' && request.method === 'GET') {
      return reply(200, {
        data: {
          type: 'aes256-gcm96',
          latest_version: Math.max(...this.keys.keys()),
          min_decryption_version: this.minDecryption,
          keys: Object.fromEntries(this.created),
        },
      });
    }
    if (url === '/v1/transit/keys/portcullis-data/rotate' && request.method === 'POST') {
      const next = Math.max(...this.keys.keys()) + 1;
      this.keys.set(next, randomBytes(32));
      this.created.set(next, 1_800_000_000);
      return reply(204);
    }
    if (url === '/v1/transit/keys/portcullis-data/config' && request.method === 'POST') {
      this.minDecryption = (body as { min_decryption_version: number }).min_decryption_version;
      return reply(204);
    }
    if (url === '/v1/transit/datakey/plaintext/portcullis-data' && request.method === 'POST') {
      if ((body as { bits?: number }).bits !== 256) return reply(400, { errors: ['bits'] });
      const version = Math.max(...this.keys.keys());
      const plaintext = randomBytes(32);
      return reply(200, {
        data: {
          plaintext: plaintext.toString('base64'),
          ciphertext: this.wrap(version, plaintext),
        },
      });
    }
    if (url === '/v1/transit/decrypt/portcullis-data' && request.method === 'POST') {
      const ciphertext = (body as { ciphertext: string }).ciphertext;
      const plaintext = this.unwrap(ciphertext);
      return plaintext
        ? reply(200, { data: { plaintext: plaintext.toString('base64') } })
        : reply(400, { errors: ['invalid ciphertext'] });
    }
    return reply(404, { errors: [] });
  }

  /** Not real encryption: the fake only needs to tell versions and tampering apart. */
  private wrap(version: number, plaintext: Buffer): string {
    const mask = this.keys.get(version)!;
    const masked = Buffer.from(plaintext.map((byte, i) => byte ^ mask[i]));
    return `vault:v${version}:${masked.toString('base64')}`;
  }

  private unwrap(ciphertext: string): Buffer | undefined {
    const match = /^vault:v(\d+):(.+)$/.exec(ciphertext);
    const version = Number(match?.[1]);
    const mask = this.keys.get(version);
    if (!match || !mask || version < this.minDecryption) return undefined;
    const masked = Buffer.from(match[2], 'base64');
    return masked.length === 32 ? Buffer.from(masked.map((byte, i) => byte ^ mask[i])) : undefined;
  }
}

describe('Vault (against a fake Vault HTTP API)', () => {
  const vault = new FakeVault();
  let options: VaultOptions;

  beforeAll(async () => {
    const address = await vault.start();
    options = {
      address,
      token: TOKEN,
      namespace: 'team-a',
      kvMount: 'secret',
      kvPrefix: 'portcullis',
      transitMount: 'transit',
      transitKey: 'portcullis-data',
    };
    vault.kv.set('services/auth.key', 'auth key from vault');
  });

  afterAll(async () => {
    await vault.stop();
  });

  describe(VaultSecrets.name, () => {
    it('reads the named secrets from KV version 2, sending token and namespace', async () => {
      const secrets = await VaultSecrets.load(new VaultClient(options), [
        'services/auth.key',
        'trust.json',
      ]);

      expect(secrets.read('services/auth.key')).toBe('auth key from vault');
      expect(secrets.has('trust.json')).toBe(false);
      expect(vault.requests.at(-2)).toEqual({
        method: 'GET',
        url: '/v1/secret/data/portcullis/services/auth.key',
        namespace: 'team-a',
      });
    });

    it('sits between the environment and the files', async () => {
      const secrets = await openSecrets({
        directory: '/nonexistent',
        environment: {},
        vault: options,
        names: ['services/auth.key', 'trust.json'],
      });

      expect(secrets.source).toBe('vault, then files');
      expect(secrets.read('services/auth.key')).toBe('auth key from vault');
      expect(() => secrets.read('trust.json')).toThrow(/Vault KV secret\/portcullis\/trust\.json/);
    });

    it('fails with the call it made, never the token, when Vault refuses it', async () => {
      const client = new VaultClient({ ...options, token: 'wrong-token' });

      const failure = VaultSecrets.load(client, ['services/auth.key']);

      await expect(failure).rejects.toThrow(VaultError);
      await expect(failure).rejects.toThrow(/403 to GET \/v1\/secret\/data/);
      await expect(failure).rejects.not.toThrow(/wrong-token/);
    });

    it('says Vault did not answer when nothing listens', async () => {
      const client = new VaultClient({ ...options, address: 'http://127.0.0.1:9' });

      await expect(client.call('GET', 'sys/health')).rejects.toThrow('Vault did not answer');
    });
  });

  describe(VaultTransitKeys.name, () => {
    it('wraps field data keys with the transit key, and opens them again', async () => {
      const keys = await openKeyEncryptionKeys(new SecretFiles('/nonexistent'), options);
      const cipher = new FieldCipher(keys);

      const sealed = await cipher.seal('ada@example.com', 'auth.accounts.email_sealed:1');
      const wrapped = sealed.subarray(7, 7 + sealed.readUInt16BE(5)).toString();

      expect(keys.kind).toBe('vault-transit');
      expect(wrapped).toMatch(/^vault:v1:/);
      const reader = new FieldCipher(
        await VaultTransitKeys.create(new VaultClient(options), 'transit', 'portcullis-data'),
      );
      expect(await reader.openText(sealed, 'auth.accounts.email_sealed:1')).toBe('ada@example.com');
    });

    it('follows rotation and the minimum decryption version', async () => {
      const keys = await VaultTransitKeys.create(
        new VaultClient(options),
        'transit',
        'portcullis-data',
      );
      const cipher = new FieldCipher(keys);
      const old = await cipher.seal('old', 'row:1');

      await keys.rotate();
      const fresh = await cipher.seal('new', 'row:1');

      expect(keys.currentVersion()).toBe(2);
      expect(keys.versionCreatedAt(2)).toEqual(new Date(1_800_000_000_000));
      expect(FieldCipher.versionOf(fresh)).toBe(2);
      const reader = new FieldCipher(
        await VaultTransitKeys.create(new VaultClient(options), 'transit', 'portcullis-data'),
      );
      expect(await reader.openText(old, 'row:1')).toBe('old');

      await keys.retireBelow(2);
      const late = new FieldCipher(
        await VaultTransitKeys.create(new VaultClient(options), 'transit', 'portcullis-data'),
      );
      await expect(late.open(old, 'row:1')).rejects.toThrow(FieldDecryptionError);
      expect(await late.openText(fresh, 'row:1')).toBe('new');
    });

    it('turns a ciphertext Vault refuses into a field error', async () => {
      const keys = await VaultTransitKeys.create(
        new VaultClient(options),
        'transit',
        'portcullis-data',
      );
      const version = keys.currentVersion();

      await expect(
        keys.unwrapDataKey(version, Buffer.from(`vault:v${version}:AAAA`)),
      ).rejects.toThrow('refused by Vault');
      await expect(keys.unwrapDataKey(version, Buffer.from('vault:v99:AAAA'))).rejects.toThrow(
        'version mismatch',
      );
    });
  });
});
