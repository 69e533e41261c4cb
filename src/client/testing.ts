// Test support for client code.
import { createServer } from 'node:net';

/** host:port of a loopback port that was free a moment ago and has no listener now: connections are refused. */
export async function deadEndpoint(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return `127.0.0.1:${port}`;
}
