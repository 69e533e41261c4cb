import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLichenError } from '../errors.js';
import { checkPassword, hashPassword } from './password.js';
import {
  createTokenProvider,
  JwtTokens,
  loadJwtKeys,
  parseAuthTokenSpec,
  parseGoDurationMs,
  SIMPLE_TOKEN_CLOCK_RESOLUTION_MS,
  SimpleTokens,
  type TokenTimers,
} from './tokens.js';

/** A clock and one-shot timers tests move by hand: advance() runs the timers that come due. */
class Clock {
  ms = 1_000_000;
  reads = 0;
  private pending: Array<{ at: number; run: () => void }> = [];
  readonly now = (): number => {
    this.reads++;
    return this.ms;
  };
  readonly timers: TokenTimers = {
    setTimeout: (run, ms) => {
      const timer = { at: this.ms + ms, run };
      this.pending.push(timer);
      return timer;
    },
    clear: (handle) => {
      this.pending = this.pending.filter((timer) => timer !== handle);
    },
  };

  advance(ms: number): void {
    const end = this.ms + ms;
    for (;;) {
      const due = this.pending.filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.pending = this.pending.filter((timer) => timer !== due);
      this.ms = due.at;
      due.run();
    }
    this.ms = end;
  }

  get timersPending(): number {
    return this.pending.length;
  }
}

const TTL_MS = 300_000;

function simpleTokens(clock: Clock, options: { tokensMax?: number } = {}): SimpleTokens {
  return new SimpleTokens({
    ttlMs: TTL_MS,
    now: clock.now,
    timers: clock.timers,
    waitForApplied: async () => {},
    tokensMax: options.tokensMax,
  });
}

const authenticate = (name: string, tokenPrefix: string) => ({ type: 'authenticate' as const, name, tokenPrefix, checkedRevision: 1 });

describe('simple tokens', () => {
  it('are "<16 letters>.<raft index>" and name the user that authenticated', async () => {
    const tokens = simpleTokens(new Clock());
    const prefix = tokens.newPrefix();
    assert.match(prefix, /^[a-zA-Z]{16}$/);
    tokens.onApplied(42, authenticate('alice', prefix));
    const token = await tokens.issue('alice', 1, prefix, 42);
    assert.equal(token, `${prefix}.42`);
    assert.deepEqual(await tokens.verify(token), { user: 'alice' });
    assert.equal(await tokens.verify(`${prefix}.43`), undefined);
    assert.equal(await tokens.verify('no-index'), undefined);
    assert.equal(await tokens.verify('.5'), undefined);
  });

  it('expire the TTL (to one second more, as etcd\'s once-a-second keeper) after their last use; each use starts the TTL again', async () => {
    const clock = new Clock();
    const tokens = simpleTokens(clock);
    tokens.onApplied(1, authenticate('alice', 'p'));
    clock.advance(299_000);
    assert.ok(await tokens.verify('p.1'));
    clock.advance(299_000);
    assert.ok(await tokens.verify('p.1'), 'used 299 s ago');
    clock.advance(TTL_MS + 1000);
    assert.equal(await tokens.verify('p.1'), undefined);
  });

  it('live at least the TTL after their last use, whenever in the clock\'s resolution it came', async () => {
    for (const lateMs of [0, 1, SIMPLE_TOKEN_CLOCK_RESOLUTION_MS / 2, SIMPLE_TOKEN_CLOCK_RESOLUTION_MS - 1]) {
      const clock = new Clock();
      const tokens = simpleTokens(clock);
      tokens.onApplied(1, authenticate('alice', 'p'));
      clock.advance(10_000);
      assert.ok(tokens.verify('p.1'), 'reads the clock');
      clock.advance(lateMs);
      assert.ok(tokens.verify('p.1'), 'the last use, on the reading of lateMs ago');
      clock.advance(TTL_MS - 1);
      assert.ok(tokens.verify('p.1'), `1 ms before the TTL since the last use (${lateMs} ms into the reading)`);
      clock.advance(TTL_MS + 1000);
      assert.equal(tokens.verify('p.1'), undefined);
    }
  });

  it('read the clock at most once per resolution while used, and a use after an idle spell reads it anew', () => {
    const clock = new Clock();
    const tokens = simpleTokens(clock);
    tokens.onApplied(1, authenticate('alice', 'p'));
    const reads = clock.reads;
    for (let i = 0; i < 1000; i++) assert.ok(tokens.verify('p.1'));
    assert.equal(clock.reads, reads, 'no read for a thousand uses within the resolution');
    clock.advance(SIMPLE_TOKEN_CLOCK_RESOLUTION_MS);
    assert.equal(clock.timersPending, 0, 'no timer while idle');
    assert.ok(tokens.verify('p.1'));
    assert.equal(clock.reads, reads + 1);
    // A quiescent member neither ticks nor sweeps: after a long idle spell the first use still
    // sees the true time, so an expired token is refused rather than kept alive.
    clock.advance(10 * TTL_MS);
    assert.equal(tokens.verify('p.1'), undefined);
    tokens.close();
    assert.equal(clock.timersPending, 0, 'close clears the timer');
  });

  it('known here are answered at once, without a promise (every request pays for none), and each such use still starts the TTL again', () => {
    const clock = new Clock();
    const tokens = simpleTokens(clock);
    tokens.onApplied(1, authenticate('alice', 'p'));
    clock.advance(299_000);
    assert.deepEqual(tokens.verify('p.1'), { user: 'alice' });
    clock.advance(299_000);
    assert.deepEqual(tokens.verify('p.1'), { user: 'alice' }, 'used 299 s ago');
    clock.advance(TTL_MS + 1000);
    assert.equal(tokens.verify('p.1'), undefined, 'expired: invalid at once too');
    tokens.onApplied(2, authenticate('bob', 'q'));
    assert.equal(tokens.verify('q.2'), tokens.verify('q.2'), "the token's own info each time: a request's caller is no copy");
    assert.ok(tokens.verify('r.3') instanceof Promise, 'a token not registered here waits for its Authenticate entry');
  });

  it('are forgotten by the sweep once expired, at most once a second', () => {
    const clock = new Clock();
    const tokens = simpleTokens(clock);
    tokens.onApplied(1, authenticate('alice', 'p'));
    tokens.sweep();
    clock.advance(TTL_MS + 1000);
    tokens.onApplied(2, authenticate('bob', 'q'));
    tokens.sweep();
    assert.equal(tokens.size, 1);
  });

  it('wait for the member to apply the entry that issued them (a token from a member further ahead)', async () => {
    const waited: number[] = [];
    const tokens = new SimpleTokens({
      ttlMs: 1000,
      now: () => 0,
      timers: new Clock().timers,
      waitForApplied: async (index) => {
        waited.push(index);
        tokens.onApplied(index, authenticate('carol', 'x'));
      },
    });
    assert.deepEqual(await tokens.verify('x.77'), { user: 'carol' });
    assert.deepEqual(waited, [77]);
  });

  it('of a user are dropped when it is deleted or its password changes, and all of them when auth is disabled', async () => {
    const tokens = simpleTokens(new Clock());
    tokens.onApplied(1, authenticate('alice', 'a'));
    tokens.onApplied(2, authenticate('bob', 'b'));
    tokens.onApplied(3, authenticate('alice', 'c'));
    tokens.onApplied(4, { type: 'userChangePassword', name: 'alice', passwordHash: 'h' });
    assert.equal(await tokens.verify('a.1'), undefined);
    assert.equal(await tokens.verify('c.3'), undefined);
    assert.ok(await tokens.verify('b.2'));
    tokens.onApplied(5, { type: 'userDelete', name: 'bob' });
    assert.equal(await tokens.verify('b.2'), undefined);
    tokens.onApplied(6, authenticate('dan', 'd'));
    tokens.onApplied(7, { type: 'authDisable' });
    assert.equal(tokens.size, 0);
  });

  it('past the limit go in the order of their last use, whatever left in between', async () => {
    const tokens = simpleTokens(new Clock(), { tokensMax: 3 });
    tokens.onApplied(1, authenticate('a', 'a'));
    tokens.onApplied(2, authenticate('b', 'b'));
    tokens.onApplied(3, authenticate('c', 'c'));
    assert.ok(tokens.verify('a.1'));
    assert.ok(tokens.verify('b.2'));
    assert.ok(tokens.verify('b.2'), 'the most recently used, used again');
    tokens.onApplied(4, authenticate('d', 'd'));
    assert.equal(await tokens.verify('c.3'), undefined, 'c was the least recently used');
    tokens.onApplied(5, { type: 'userDelete', name: 'b' });
    tokens.onApplied(6, authenticate('e', 'e'));
    tokens.onApplied(7, authenticate('f', 'f'));
    assert.equal(tokens.size, 3);
    assert.equal(await tokens.verify('a.1'), undefined, 'a went next, b having left by itself');
    for (const token of ['d.4', 'e.6', 'f.7']) assert.ok(tokens.verify(token), token);
    tokens.onApplied(8, { type: 'authDisable' });
    tokens.onApplied(9, authenticate('g', 'g'));
    tokens.onApplied(10, authenticate('h', 'h'));
    assert.equal(tokens.size, 2);
    assert.ok(tokens.verify('g.9'));
    tokens.onApplied(11, authenticate('i', 'i'));
    tokens.onApplied(12, authenticate('j', 'j'));
    assert.equal(await tokens.verify('h.10'), undefined, 'the order starts again after auth disable');
    assert.ok(tokens.verify('g.9'));
  });

  it('are bounded: past the limit the least recently used goes', async () => {
    const tokens = simpleTokens(new Clock(), { tokensMax: 2 });
    tokens.onApplied(1, authenticate('a', 'a'));
    tokens.onApplied(2, authenticate('b', 'b'));
    assert.ok(await tokens.verify('a.1'));
    tokens.onApplied(3, authenticate('c', 'c'));
    assert.equal(tokens.size, 2);
    assert.equal(await tokens.verify('b.2'), undefined);
    assert.ok(await tokens.verify('a.1'));
  });
});

describe('JWT tokens', () => {
  let dir: string;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const file = (name: string, text: string | Buffer): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lichen-jwt-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('carry the user and the auth revision, signed with RS256 (a PKCS#1 key, as etcd\'s docs make)', async () => {
    const priv = file('rsa.key', rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }));
    const clock = new Clock();
    const tokens = createTokenProvider(`jwt,priv-key=${priv},sign-method=RS256,ttl=10m`, { ttlMs: 0, now: clock.now, timers: clock.timers, waitForApplied: async () => {} });
    assert.equal(tokens.newPrefix(), '');
    const token = await tokens.issue('alice', 7, '', 99);
    const [header, payload] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    assert.equal(header.alg, 'RS256');
    assert.equal(payload.username, 'alice');
    assert.equal(payload.revision, 7);
    assert.equal(payload.exp, Math.floor((clock.ms + 600_000) / 1000));
    assert.deepEqual(await tokens.verify(token), { user: 'alice', authRevision: 7 });
  });

  it('are refused when expired, signed by another key, or altered', async () => {
    const clock = new Clock();
    const tokens = new JwtTokens({ signMethod: 'RS256', privateKey: rsa.privateKey, publicKey: rsa.publicKey, ttlMs: 60_000, now: clock.now });
    const forger = new JwtTokens({ signMethod: 'RS256', privateKey: otherRsa.privateKey, publicKey: otherRsa.publicKey, ttlMs: 60_000, now: clock.now });
    const token = await tokens.issue('alice', 3);
    assert.equal(await tokens.verify(await forger.issue('root', 3)), undefined);
    const [h, , s] = token.split('.');
    const altered = `${h}.${Buffer.from(JSON.stringify({ username: 'root', revision: 3, exp: 9e9 })).toString('base64url')}.${s}`;
    assert.equal(await tokens.verify(altered), undefined);
    assert.ok(await tokens.verify(token));
    clock.ms += 61_000;
    assert.equal(await tokens.verify(token), undefined, 'expired, even after it was verified once');
  });

  it('work with ES256 and HS256 keys, and a member with only the public key verifies but cannot sign', async () => {
    const clock = new Clock();
    const esPriv = file('ec.key', ec.privateKey.export({ type: 'sec1', format: 'pem' }));
    const esPub = file('ec.pub', ec.publicKey.export({ type: 'spki', format: 'pem' }));
    const options = { ttlMs: 0, now: clock.now, timers: clock.timers, waitForApplied: async () => {} };
    const signer = createTokenProvider(`jwt,priv-key=${esPriv},pub-key=${esPub},sign-method=ES256`, options);
    const verifier = createTokenProvider(`jwt,pub-key=${esPub},sign-method=ES256`, options);
    const token = await signer.issue('bob', 2, '', 1);
    assert.deepEqual(await verifier.verify(token), { user: 'bob', authRevision: 2 });
    await assert.rejects(verifier.issue('bob', 2, '', 1), (e) => isLichenError(e) && e.details.etcdError === 'verifyOnly');

    const secret = file('hmac.key', 'a shared secret of enough length for HS256!');
    const hs = createTokenProvider(`jwt,priv-key=${secret},sign-method=HS256`, options);
    assert.deepEqual(await hs.verify(await hs.issue('carl', 1, '', 1)), { user: 'carl', authRevision: 1 });
  });

  it('refuse mismatched keys and keys of the wrong kind at start-up', () => {
    const priv = file('rsa2.key', rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const otherPub = file('other.pub', otherRsa.publicKey.export({ type: 'spki', format: 'pem' }));
    const ecPub = file('ec2.pub', ec.publicKey.export({ type: 'spki', format: 'pem' }));
    assert.throws(() => loadJwtKeys({ kind: 'jwt', signMethod: 'RS256', privateKeyPath: priv, publicKeyPath: otherPub, ttlMs: 1 }), /don't match/);
    assert.throws(() => loadJwtKeys({ kind: 'jwt', signMethod: 'RS256', publicKeyPath: ecPub, ttlMs: 1 }), /needs RSA keys/);
    assert.throws(() => loadJwtKeys({ kind: 'jwt', signMethod: 'RS256', privateKeyPath: join(dir, 'missing'), ttlMs: 1 }), /cannot read/);
  });
});

describe('--auth-token', () => {
  it('reads etcd\'s option syntax', () => {
    assert.deepEqual(parseAuthTokenSpec('simple'), { kind: 'simple' });
    assert.deepEqual(parseAuthTokenSpec('jwt,pub-key=/p,priv-key=/k,sign-method=RS256,ttl=5m'), {
      kind: 'jwt',
      signMethod: 'RS256',
      publicKeyPath: '/p',
      privateKeyPath: '/k',
      ttlMs: 300_000,
    });
    assert.equal((parseAuthTokenSpec('jwt,priv-key=/k,sign-method=ES384') as { ttlMs: number }).ttlMs, 300_000);
  });

  it('refuses what etcd refuses, saying why', () => {
    assert.throws(() => parseAuthTokenSpec('opaque'), /unknown token type "opaque"/);
    assert.throws(() => parseAuthTokenSpec('jwt,priv-key=/k'), /sign-method must be one of/);
    assert.throws(() => parseAuthTokenSpec('jwt,priv-key=/k,sign-method=none'), /not "none"/);
    assert.throws(() => parseAuthTokenSpec('jwt,priv-key=/k,priv-key=/j,sign-method=RS256'), /given twice/);
    assert.throws(() => parseAuthTokenSpec('jwt,priv-key,sign-method=RS256'), /not name=value/);
    assert.throws(() => parseAuthTokenSpec('jwt,sign-method=RS256'), /needs priv-key/);
    assert.throws(() => parseAuthTokenSpec('jwt,pub-key=/p,sign-method=HS256'), /HMAC signing needs priv-key/);
    assert.throws(() => parseAuthTokenSpec('jwt,priv-key=/k,sign-method=RS256,ttl=5 minutes'), /invalid duration/);
    assert.throws(() => parseAuthTokenSpec('jwt,priv-key=/k,sign-method=RS256,colour=red'), /unknown jwt option "colour"/);
  });

  it('reads Go durations', () => {
    assert.equal(parseGoDurationMs('300s'), 300_000);
    assert.equal(parseGoDurationMs('1h30m'), 5_400_000);
    assert.equal(parseGoDurationMs('1.5h'), 5_400_000);
    assert.equal(parseGoDurationMs('250ms'), 250);
    assert.throws(() => parseGoDurationMs('10'), /invalid duration/);
    assert.throws(() => parseGoDurationMs('0s'), /at least 1ms/);
  });
});

describe('passwords', () => {
  it('are bcrypt hashes, checked on a worker thread', async () => {
    const hash = await hashPassword('secret', 4);
    assert.match(hash, /^\$2[aby]\$04\$.{53}$/);
    assert.equal(await checkPassword('secret', hash), true);
    assert.equal(await checkPassword('Secret', hash), false);
    assert.equal(await checkPassword('', ''), false, 'an empty hash (a noPassword user) matches nothing');
  });
});
