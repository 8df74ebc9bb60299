/** Injection token of the validated {@link AppConfig}. */
export const APP_CONFIG = Symbol('APP_CONFIG');

/** Injection token of the services hosted by this process (`ServiceName[]`). */
export const HOSTED_SERVICES = Symbol('HOSTED_SERVICES');

/** Injection token of the transport server that the bootstrap connects to the application. */
export const TRANSPORT_SERVER = Symbol('TRANSPORT_SERVER');

/**
 * Injection token of the process's `SecretsProvider`: `PORTCULLIS_SECRET_*` variables in
 * development, then Vault KV when `VAULT_ADDR` is set, then the files in `SECRETS_DIR`.
 */
export const SECRETS = Symbol('SECRETS');

/**
 * The same provider as {@link SECRETS}, under the name the message key ring injects it by.
 * It offers `read` and `has`, as `SecretFiles` does.
 */
export const SECRET_FILES = Symbol('SECRET_FILES');

/**
 * Injection token of the guards (`CanActivate[]`) that every message handler passes. The
 * bootstrap applies them to the message transport, which does not inherit the HTTP
 * application's global guards.
 */
export const MESSAGE_GUARDS = Symbol('MESSAGE_GUARDS');
