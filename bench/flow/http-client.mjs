// A lean JSON client over node:http with keep-alive: the driver shares the machine with the
// deployment it measures, so it spends as little CPU per request as it can.
import { Buffer } from 'node:buffer';
import { Agent, request } from 'node:http';

export class HttpClient {
  /** @param {(path: string) => {host: string, port: number}} route which process serves a path */
  constructor(route, sockets) {
    this.route = route;
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  /** Sends one request; resolves with status and parsed JSON body (or text), never rejects. */
  send(method, path, { token, body, headers = {} } = {}) {
    const { host, port } = this.route(path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const all = { ...headers };
    if (token) all.authorization = `Bearer ${token}`;
    if (payload !== undefined) {
      all['content-type'] = 'application/json';
      all['content-length'] = Buffer.byteLength(payload);
    }
    return new Promise((done) => {
      const req = request({ host, port, path, method, headers: all, agent: this.agent }, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = text;
          if ((res.headers['content-type'] ?? '').includes('application/json') && text) {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          done({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', () => done({ status: 0, body: undefined }));
      });
      req.on('error', (error) => done({ status: 0, body: error.code ?? 'error' }));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  close() {
    this.agent.destroy();
  }
}
