import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * TLS files of a NATS connection (`NATS_TLS_CA_FILE`, `NATS_TLS_CERT_FILE`,
 * `NATS_TLS_KEY_FILE`).
 */
export interface NatsTlsFiles {
  /** The CA that signed the server's certificate; the system's CAs when unset. */
  readonly caFile?: string;
  /** This process's client certificate and its key: set both or neither. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** What secures one NATS connection, in `@nats-io/transport-node`'s option names. */
export interface NatsTransportSecurity {
  readonly tls?: NatsTlsFiles;
  readonly inboxPrefix?: string;
}

/** Where the replies to a NATS user's requests arrive: subjects under `_INBOX.<user>`. */
export function natsInboxPrefix(user: string): string {
  return `_INBOX.${user}`;
}

/** A NATS user name as the server maps it from a certificate: one or more subject tokens. */
const USER_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/**
 * The TLS options of a NATS connection and, with a client certificate, its inbox prefix.
 * The server maps the certificate's common name to a user that may read only the inboxes
 * under {@link natsInboxPrefix} of that name, so the prefix is taken from the certificate
 * itself: every connection made with it, whatever it is called, stays inside its user's
 * permissions, and no other service can read the replies it asked for.
 */
export function natsTransportSecurity(files: NatsTlsFiles | undefined): NatsTransportSecurity {
  if (!files) return {};
  if (!files.certFile) return { tls: files };
  return { tls: files, inboxPrefix: natsInboxPrefix(certificateUser(files.certFile)) };
}

function certificateUser(path: string): string {
  let subject: string;
  try {
    subject = new X509Certificate(readFileSync(path)).subject;
  } catch {
    throw new Error(`NATS_TLS_CERT_FILE could not be read as a PEM certificate: ${path}`);
  }
  const commonName = /^CN=(.*)$/m.exec(subject)?.[1];
  if (commonName === undefined || !USER_NAME.test(commonName)) {
    throw new Error(
      'the certificate in NATS_TLS_CERT_FILE needs a common name of letters, digits, ' +
        "'-' and '_', optionally separated by dots (it names the NATS user)",
    );
  }
  return commonName;
}
