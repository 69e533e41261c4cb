import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import { createCertificateAuthority, issueCertificate, commonNameOf } from './certs.js';
import { TLS_OFF, clientOptions, loadTlsMaterial, serverOptions, tlsSettingsProblem, verifiedCommonName, type TlsSettings } from './settings.js';

function withDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-tls-'));
  return body(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

const settings = (overrides: Partial<TlsSettings>): TlsSettings => ({ ...TLS_OFF, ...overrides });

test('flag combinations that cannot work are named with their flags', () => {
  assert.equal(tlsSettingsProblem(TLS_OFF, ''), undefined);
  assert.equal(tlsSettingsProblem(settings({ certFile: 'c.pem' }), 'peer-'), '--peer-cert-file and --peer-key-file must be given together');
  assert.match(tlsSettingsProblem(settings({ trustedCaFile: 'ca.pem' }), '') ?? '', /^--trusted-ca-file needs TLS: give --cert-file and --key-file, or --auto-tls$/);
  assert.match(tlsSettingsProblem(settings({ autoTls: true, clientCertAuth: true }), '') ?? '', /^--client-cert-auth needs --trusted-ca-file/);
  assert.match(tlsSettingsProblem(settings({ autoTls: true, allowedCn: 'n' }), 'peer-') ?? '', /^--peer-cert-allowed-cn needs --peer-trusted-ca-file/);
  assert.equal(tlsSettingsProblem(settings({ certFile: 'c', keyFile: 'k', trustedCaFile: 'ca', clientCertAuth: true, allowedCn: 'n' }), 'peer-'), undefined);
});

test('no TLS flags, no TLS; auto TLS makes a self-signed certificate once and reuses it', async () => {
  await withDir(async (dir) => {
    assert.equal(await loadTlsMaterial(TLS_OFF, { dir, hosts: [] }), undefined);
    const auto = join(dir, 'fixtures', 'peer');
    const first = await loadTlsMaterial(settings({ autoTls: true }), { dir: auto, hosts: ['127.0.0.1'] });
    assert.ok(first);
    assert.equal(first.selfSigned, true);
    assert.equal(first.requireClientCert, false);
    assert.equal(commonNameOf(first.cert), 'lichen');
    assert.equal(statSync(join(auto, 'key.pem')).mode & 0o777, 0o600);
    const again = await loadTlsMaterial(settings({ autoTls: true }), { dir: auto, hosts: ['127.0.0.1'] });
    assert.ok(again?.cert.equals(first.cert), 'the certificate was made again instead of reused');
  });
});

test('unreadable files and a key that does not match its certificate fail at start-up, naming the file', async () => {
  await withDir(async (dir) => {
    const ca = await createCertificateAuthority('CA', 1);
    const one = await issueCertificate(ca, { commonName: 'one', hosts: ['127.0.0.1'], usage: 'server', validDays: 1 });
    const two = await issueCertificate(ca, { commonName: 'two', hosts: ['127.0.0.1'], usage: 'server', validDays: 1 });
    writeFileSync(join(dir, 'cert.pem'), one.cert);
    writeFileSync(join(dir, 'key.pem'), two.key);
    await assert.rejects(loadTlsMaterial(settings({ certFile: join(dir, 'missing.pem'), keyFile: join(dir, 'key.pem') }), { dir, hosts: [] }), /cannot read the certificate file .*missing\.pem/);
    await assert.rejects(loadTlsMaterial(settings({ certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') }), { dir, hosts: [] }), /TLS: cannot use .*cert\.pem/);
  });
});

test('a trusted CA requires client certificates; the verified common name is read from the connection', async () => {
  await withDir(async (dir) => {
    const ca = await createCertificateAuthority('CA', 1);
    const server = await issueCertificate(ca, { commonName: 'server', hosts: ['127.0.0.1'], usage: 'server', validDays: 1 });
    const client = await issueCertificate(ca, { commonName: 'alice', hosts: [], usage: 'client', validDays: 1 });
    for (const [name, text] of Object.entries({ 'ca.pem': ca.cert, 'server.pem': server.cert, 'server-key.pem': server.key })) writeFileSync(join(dir, name), text);
    const material = await loadTlsMaterial(
      settings({ certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server-key.pem'), trustedCaFile: join(dir, 'ca.pem'), clientCertAuth: true }),
      { dir, hosts: [] },
    );
    assert.ok(material?.requireClientCert && material.commonNameIsUser);
    const names: (string | undefined)[] = [];
    const listener = tls.createServer(serverOptions(material, ['h2']), (socket) => {
      names.push(verifiedCommonName(socket));
      socket.end();
    });
    listener.on('tlsClientError', () => names.push('refused'));
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const port = (listener.address() as { port: number }).port;
    const dial = async (options: tls.ConnectionOptions): Promise<void> => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(join(dir, 'ca.pem')), ...options });
      socket.on('error', () => {});
      socket.resume();
      await new Promise((resolve) => socket.on('close', resolve));
    };
    try {
      await dial({ cert: client.cert, key: client.key, ALPNProtocols: ['h2'] });
      await dial({});
      assert.deepEqual(names, ['alice', 'refused']);
      // A member dialing with the same material verifies the listener against the CA.
      const options = clientOptions(material, ['h2']);
      assert.equal(options.rejectUnauthorized, true);
    } finally {
      listener.close();
    }
  });
});
