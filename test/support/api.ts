import type { Deployment } from './deployment';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

/** A thin HTTP client for the public contract, routing each path to the process serving it. */
export class Api {
  constructor(private readonly deployment: Deployment) {}

  async request<T = any>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let payload: string | undefined = options.rawBody;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(options.body);
    }
    const response = await fetch(this.deployment.urlFor(path), { method, headers, body: payload });
    const text = await response.text();
    let body: unknown = text;
    if (response.headers.get('content-type')?.includes('application/json') && text) {
      body = JSON.parse(text);
    }
    return { status: response.status, body: body as T, headers: response.headers };
  }

  get<T = any>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.request<T>('GET', path, options);
  }

  post<T = any>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.request<T>('POST', path, options);
  }

  /** Registers a fresh customer and logs in; returns the account id and access token. */
  async customer(label: string): Promise<{ id: string; email: string; token: string }> {
    const email = `${label}-${Math.random().toString(36).slice(2, 10)}@example.com`;
    const password = 'a long enough password 42';
    const registered = await this.post('/auth/register', { body: { email, password } });
    if (registered.status !== 201) throw new Error(`register failed: ${registered.status}`);
    return { id: registered.body.id, email, token: await this.login(email, password) };
  }

  async login(email: string, password: string): Promise<string> {
    const response = await this.post('/auth/login', { body: { email, password } });
    if (response.status !== 200) throw new Error(`login failed: ${response.status}`);
    return response.body.accessToken as string;
  }

  /** Polls until `check` returns a value, or fails after `timeoutMs`. */
  async eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The invoice billing created for an order, once it exists. */
  invoiceFor(orderId: string, token: string): Promise<any> {
    return this.eventually(async () => {
      const response = await this.get(`/billing/invoices?orderId=${orderId}`, { token });
      return response.status === 200 && response.body.length === 1 ? response.body[0] : undefined;
    });
  }
}
