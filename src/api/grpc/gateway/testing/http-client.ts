// Test support: a plain HTTP/1.1 client for the JSON gateway (node:http, keep-alive), so tests
// see the bytes a curl or etcd3gw user would.
import http from 'node:http';

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export class GatewayClient {
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(readonly address: string) {}

  /** One request; resolves with the whole response. */
  request(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpReply> {
    return new Promise((resolve, reject) => {
      const request = http.request(this.url(path), { method, agent: this.agent, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end(body);
    });
  }

  /** POST with a JSON body; resolves with the status and the parsed JSON answer. */
  async post(path: string, body: object | string): Promise<{ status: number; json: any }> {
    const reply = await this.request('POST', path, typeof body === 'string' ? body : JSON.stringify(body));
    return { status: reply.status, json: JSON.parse(reply.text) };
  }

  /**
   * A streaming call: the request body stays open for `send`, response lines arrive in `lines`.
   * `response` is there once the headers are in (to pause it, for instance).
   */
  stream(path: string, headers: Record<string, string> = {}): GatewayStream {
    return new GatewayStream(http.request(this.url(path), { method: 'POST', agent: false, headers }));
  }

  close(): void {
    this.agent.destroy();
  }

  private url(path: string): string {
    return `http://${this.address}${path}`;
  }
}

export class GatewayStream {
  response: http.IncomingMessage | undefined;
  readonly responded: Promise<http.IncomingMessage>;
  private buffered = '';
  private readonly lines: string[] = [];
  private readonly waiters: Array<() => void> = [];
  private ended = false;

  constructor(readonly request: http.ClientRequest) {
    this.responded = new Promise((resolve, reject) => {
      request.on('response', (response) => {
        this.response = response;
        response.setEncoding('utf8');
        response.on('data', (text: string) => {
          this.buffered += text;
          let newline: number;
          while ((newline = this.buffered.indexOf('\n')) >= 0) {
            this.lines.push(this.buffered.slice(0, newline));
            this.buffered = this.buffered.slice(newline + 1);
          }
          this.wake();
        });
        // 'close' also comes when the connection drops mid-response ('end' does not).
        response.on('close', () => {
          this.ended = true;
          if (this.buffered.length > 0) this.lines.push(this.buffered);
          this.buffered = '';
          this.wake();
        });
        resolve(response);
      });
      request.on('error', reject);
    });
    request.flushHeaders();
  }

  /** Whether the whole response arrived (it ended cleanly rather than with the connection). */
  get complete(): boolean {
    return this.response?.complete === true;
  }

  send(message: object | string): void {
    this.request.write(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The next response line, parsed; undefined once the response has ended. Bounded by `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<any> {
    const deadline = performance.now() + timeoutMs;
    while (this.lines.length === 0 && !this.ended) {
      // A deadline, not a delay: it only bounds a test that would otherwise hang.
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no response line within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const line = this.lines.shift();
    return line === undefined ? undefined : JSON.parse(line);
  }

  /** Ends the request body (the client's side of the call). */
  endRequest(): void {
    this.request.end();
  }

  /** Drops the connection. */
  close(): void {
    this.request.destroy();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
