// The storage engine a member runs (--engine): each on-disk engine keeps a member's data across
// restarts, and a data directory written by one is refused by the other (not misread).
import { afterEach, beforeEach, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LichenClient } from '../client/index.js';
import type { EngineKind } from '../engine/index.js';
import { createSilentLogger } from '../log.js';
import { defaultNodeConfig } from './config.js';
import { startNode } from './index.js';

let dir: string;
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'lichen-engine-choice-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function config(dataDir: string, engine: EngineKind) {
  return defaultNodeConfig({ name: 'n1', dataDir, engine, listenClient: '127.0.0.1:0', listenPeer: '127.0.0.1:0', listenHttp: '', tickMs: 10, logLevel: 'error' });
}

/** Starts a member, runs `fn` with a client to it, and stops both. */
async function withMember(dataDir: string, engine: EngineKind, fn: (client: LichenClient) => Promise<void>): Promise<void> {
  const node = await startNode(config(dataDir, engine), createSilentLogger());
  const client = new LichenClient({ endpoints: [node.addresses.client], timeoutMs: 10_000 });
  try {
    await fn(client);
  } finally {
    client.close();
    await node.close();
  }
}

for (const [engine, other] of [['leveldb', 'lmdb'], ['lmdb', 'leveldb']] as const) {
  it(`a member on --engine ${engine} keeps its keys and history across a restart; --engine ${other} refuses its directory`, async () => {
    const dataDir = join(dir, 'n1');
    let revision = 0;
    await withMember(dataDir, engine, async (client) => {
      await client.put('k', 'v1');
      revision = Number((await client.put('k', 'v2')).header.revision);
    });
    await withMember(dataDir, engine, async (client) => {
      assert.equal((await client.getValue('k'))?.toString(), 'v2');
      const [old] = (await client.get('k', { revision: revision - 1 })).kvs;
      assert.equal(old?.value.toString(), 'v1');
    });
    await assert.rejects(
      startNode(config(dataDir, other), createSilentLogger()),
      new RegExp(`holds a ${engine} engine's data, but this process runs --engine ${other}: start it with --engine ${engine}`),
    );
  });
}
