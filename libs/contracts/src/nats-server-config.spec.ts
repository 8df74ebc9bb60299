import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { natsPermissions } from './nats-permissions';
import {
  CONTAINER_NATS_SERVER_CONFIG,
  type NatsServerConfigOptions,
  renderNatsServerConfig,
} from './nats-server-config';

const OPTIONS: NatsServerConfigOptions = {
  serverName: 'test-nats',
  host: '127.0.0.1',
  port: 14222,
  jetStreamStoreDir: '/tmp/js',
  tls: { caFile: '/tls/ca.crt', certFile: '/tls/server.crt', keyFile: '/tls/server.key' },
};

describe(renderNatsServerConfig.name, () => {
  const config = renderNatsServerConfig(OPTIONS);

  it('requires TLS with a verified client certificate that names the user', () => {
    expect(config).toContain(
      [
        'tls {',
        '  cert_file: "/tls/server.crt"',
        '  key_file: "/tls/server.key"',
        '  ca_file: "/tls/ca.crt"',
        '  verify_and_map: true',
      ].join('\n'),
    );
  });

  it('declares one user per service and platform, by certificate subject', () => {
    const users = [...config.matchAll(/user: "([^"]+)"/g)].map((match) => match[1]);

    expect(users).toEqual(['CN=auth', 'CN=orders', 'CN=billing', 'CN=platform']);
  });

  it('quotes every subject, so $JS.API.INFO is not read as a variable', () => {
    expect(config).toContain('"$JS.API.INFO",');
    expect(config).not.toMatch(/^\s+\$JS/m);
  });

  it('lists each user its allowed subjects and nothing more', () => {
    const orders = config.slice(config.indexOf('"CN=orders"'), config.indexOf('"CN=billing"'));
    const quoted = (subjects: readonly string[]) => subjects.map((s) => `"${s}",`).join('\n');
    const inOrder = (subjects: readonly string[]) =>
      quoted(subjects).replace(/\n/g, '\n            ');

    expect(orders).toContain(inOrder(natsPermissions('orders').publish));
    expect(orders).toContain(inOrder(natsPermissions('orders').subscribe));
    expect(orders).not.toContain('allow_responses');
  });

  it('adds extra users after the services', () => {
    const withObserver = renderNatsServerConfig({
      ...OPTIONS,
      extraUsers: { observer: { publish: ['>'], subscribe: ['>'], allowResponses: false } },
    });

    expect(withObserver.indexOf('"CN=observer"')).toBeGreaterThan(
      withObserver.indexOf('"CN=platform"'),
    );
  });

  it("renders the containers' configuration exactly as docker/nats/nats.conf holds it", () => {
    const committed = readFileSync(resolve('docker/nats/nats.conf'), 'utf8');

    expect(committed).toBe(renderNatsServerConfig(CONTAINER_NATS_SERVER_CONFIG));
  });
});
