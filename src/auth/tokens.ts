// Auth tokens, as etcd issues them (`--auth-token`):
//
// - simple (the default): "<16 random letters>.<raft index of the Authenticate entry>". Every
//   member registers the token when it applies that entry, so it is valid on every member, and
//   a member that has not applied the entry yet waits until it has. Tokens live in memory only:
//   they expire `--auth-token-ttl` seconds (to one second more) after their last use, and all of a member's tokens
//   are gone when it restarts, when auth is disabled, and a user's when it is deleted or its
//   password changes.
// - jwt: a signed JWT ({username, revision, exp}) from the member that took the Authenticate
//   request, valid on every member that has the key. It cannot be revoked: it stays valid until
//   it expires, and fails with "revision of auth store is old" once the auth state changed after
//   it was issued (the client then authenticates again).
import { createPrivateKey, createPublicKey, createSecretKey, randomInt, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ErrorCode, LichenError } from '../errors.js';
import { authTokensMax, jwtVerifiedTokensMax } from '../limits.js';
import type { AuthCommand } from '../mvcc/command.js';
import { authError } from './errors.js';

/**
 * What a valid token says: the user, and for a JWT the auth revision it was issued at. One object
 * per token, kept with it and handed out on every use (the API layer's caller is this object, not
 * a copy made per request), so nothing may change it.
 */
export interface TokenInfo {
  readonly user: string;
  /** Absent for simple tokens: they stand for the current auth state (etcd checks them so). */
  readonly authRevision?: number;
}

export interface TokenProvider {
  readonly kind: 'simple' | 'jwt';
  /** The part of a new token chosen before proposing Authenticate ('' for a JWT). */
  newPrefix(): string;
  /** Called on every member for each auth command it applied successfully, at raft `index`. */
  onApplied(index: number, command: AuthCommand): void;
  /** The token for an Authenticate applied at `index` at auth revision `revision`. */
  issue(user: string, revision: number, prefix: string, index: number): Promise<string>;
  /**
   * What `token` says, or undefined when it is not valid here. Answered at once (no promise) for a
   * token this member already knows, which is every request's case: see NodeAuthBackend.identify.
   */
  verify(token: string): TokenInfo | undefined | Promise<TokenInfo | undefined>;
  /** Forgets expired tokens; called often, does work at most once a second. */
  sweep(): void;
  /** Clears the provider's timers (the member stops). */
  close(): void;
}

/** One-shot timers, injected as the replica's clock is (tests and the simulator move time by hand). */
export interface TokenTimers {
  setTimeout(run: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** The provider `--auth-token` asks for; reads JWT keys now, so a bad option fails at start-up. */
export function createTokenProvider(
  authToken: string,
  options: { ttlMs: number; now: () => number; timers: TokenTimers; waitForApplied: (index: number) => Promise<void> },
): TokenProvider {
  const spec = parseAuthTokenSpec(authToken);
  if (spec.kind === 'simple') return new SimpleTokens(options);
  return new JwtTokens({ signMethod: spec.signMethod, ...loadJwtKeys(spec), ttlMs: spec.ttlMs, now: options.now });
}

/** etcd's default simple-token TTL (--auth-token-ttl). */
export const AUTH_TOKEN_TTL_SECONDS_DEFAULT = 300;

/** etcd's default JWT ttl option. */
export const JWT_TTL_MS_DEFAULT = 5 * 60 * 1000;

const SIMPLE_TOKEN_LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const SIMPLE_TOKEN_PREFIX_LENGTH = 16;
const SWEEP_INTERVAL_MS = 1000;
/**
 * How old the wall clock a simple token's use reads may be. Each authenticated request uses its
 * token, and reading the clock to extend the token's life was the largest single part of
 * identifying the caller (Date.now() 0.26–0.39 µs per request in the member's profile,
 * 2026-12-07). etcd's simpleTokenTTLKeeper keeps exact deadlines but checks them
 * once a second, so a token lives its TTL to one second more after its last use; with a clock
 * at most this old and deadlines set this much later, a token lives its TTL to twice this more:
 * the same bounds, never less than the TTL.
 */
export const SIMPLE_TOKEN_CLOCK_RESOLUTION_MS = 500;

export interface SimpleTokenOptions {
  ttlMs: number;
  /** The wall clock; read at most once per SIMPLE_TOKEN_CLOCK_RESOLUTION_MS while tokens are used. */
  now: () => number;
  /** Ends the validity of a clock reading after SIMPLE_TOKEN_CLOCK_RESOLUTION_MS. */
  timers: TokenTimers;
  /** Resolves once this member has applied `index`; rejects (Timeout) if that takes too long. */
  waitForApplied: (index: number) => Promise<void>;
  tokensMax?: number;
}

/** A registered simple token: what it says, when it expires, and its place in the order of use. */
interface TokenEntry {
  token: string;
  info: TokenInfo;
  expiresAtMs: number;
  older: TokenEntry | undefined;
  newer: TokenEntry | undefined;
}

export class SimpleTokens implements TokenProvider {
  readonly kind = 'simple';
  private readonly tokens = new Map<string, TokenEntry>();
  /**
   * The order of use, least recently used first (what goes past tokensMax), as a doubly linked
   * list: moving a used token to the end is a few pointer writes. Keeping that order in the Map
   * instead (a delete and a set on every use) cost 0.9 µs per authenticated request, most of
   * identifying the caller (2026-12-06, 400 tokens, load ~10).
   */
  private oldest: TokenEntry | undefined;
  private newest: TokenEntry | undefined;
  private lastSweepMs = -Infinity;
  /**
   * The clock as last read, while `clockValid`: a timer ends its validity after one resolution,
   * so no use can see a reading older than that, however long the member was idle (a quiescent
   * member neither ticks nor sweeps; its next use reads the clock again).
   */
  private clockMs = 0;
  private clockValid = false;
  private clockTimer: unknown;
  private readonly invalidateClock = (): void => {
    this.clockValid = false;
    this.clockTimer = undefined;
  };

  constructor(private readonly options: SimpleTokenOptions) {}

  get size(): number {
    return this.tokens.size;
  }

  newPrefix(): string {
    let prefix = '';
    for (let i = 0; i < SIMPLE_TOKEN_PREFIX_LENGTH; i++) prefix += SIMPLE_TOKEN_LETTERS[randomInt(SIMPLE_TOKEN_LETTERS.length)];
    return prefix;
  }

  onApplied(index: number, command: AuthCommand): void {
    switch (command.type) {
      case 'authenticate':
        if (command.tokenPrefix !== '') this.register(`${command.tokenPrefix}.${index}`, command.name);
        break;
      case 'userDelete':
        this.dropUser(command.name);
        break;
      case 'userChangePassword':
        this.dropUser(command.name);
        break;
      case 'authDisable':
        this.tokens.clear();
        this.oldest = this.newest = undefined;
        break;
      default:
        break;
    }
  }

  async issue(_user: string, _revision: number, prefix: string, index: number): Promise<string> {
    return `${prefix}.${index}`;
  }

  verify(token: string): TokenInfo | undefined | Promise<TokenInfo | undefined> {
    // A token this member knows (every request's case) needs no parsing and no waiting.
    const entry = this.tokens.get(token);
    if (entry) return this.use(entry);
    return this.verifyOnceApplied(token);
  }

  /** A token not registered here (yet): valid if the Authenticate entry its index names registers it. */
  private async verifyOnceApplied(token: string): Promise<TokenInfo | undefined> {
    const dot = token.lastIndexOf('.');
    const index = Number(token.slice(dot + 1));
    if (dot <= 0 || !/^\d+$/.test(token.slice(dot + 1)) || !Number.isSafeInteger(index)) return undefined;
    await this.options.waitForApplied(index);
    const entry = this.tokens.get(token);
    return entry && this.use(entry);
  }

  sweep(): void {
    // No clock to read (nor timer to set) on a member nobody logged in to.
    if (this.tokens.size === 0) return;
    const now = this.now();
    if (now - this.lastSweepMs < SWEEP_INTERVAL_MS) return;
    this.lastSweepMs = now;
    for (const entry of this.tokens.values()) if (entry.expiresAtMs <= now) this.forget(entry);
  }

  close(): void {
    this.options.timers.clear(this.clockTimer);
    this.invalidateClock();
  }

  /** The wall clock, at most SIMPLE_TOKEN_CLOCK_RESOLUTION_MS old. */
  private now(): number {
    if (!this.clockValid) {
      this.clockMs = this.options.now();
      this.clockValid = true;
      this.clockTimer = this.options.timers.setTimeout(this.invalidateClock, SIMPLE_TOKEN_CLOCK_RESOLUTION_MS);
    }
    return this.clockMs;
  }

  /** A token used now lives until then: at least the TTL, whatever the age of the clock's reading. */
  private deadline(): number {
    return this.now() + this.options.ttlMs + SIMPLE_TOKEN_CLOCK_RESOLUTION_MS;
  }

  private use(entry: TokenEntry): TokenInfo | undefined {
    if (entry.expiresAtMs <= this.now()) {
      this.forget(entry);
      return undefined;
    }
    // Each use extends the token's life (etcd's simpleTokenTTLKeeper.resetSimpleToken) and makes
    // it the most recently used.
    entry.expiresAtMs = this.deadline();
    if (entry !== this.newest) {
      this.unlink(entry);
      this.link(entry);
    }
    return entry.info;
  }

  private register(token: string, user: string): void {
    const known = this.tokens.get(token);
    if (known) this.forget(known);
    const entry: TokenEntry = { token, info: { user }, expiresAtMs: this.deadline(), older: undefined, newer: undefined };
    this.tokens.set(token, entry);
    this.link(entry);
    const max = this.options.tokensMax ?? authTokensMax;
    while (this.tokens.size > max) this.forget(this.oldest!);
  }

  private dropUser(user: string): void {
    for (const entry of this.tokens.values()) if (entry.info.user === user) this.forget(entry);
  }

  private forget(entry: TokenEntry): void {
    this.unlink(entry);
    this.tokens.delete(entry.token);
  }

  /** Makes `entry` the most recently used. */
  private link(entry: TokenEntry): void {
    entry.older = this.newest;
    entry.newer = undefined;
    if (this.newest) this.newest.newer = entry;
    else this.oldest = entry;
    this.newest = entry;
  }

  private unlink(entry: TokenEntry): void {
    if (entry.older) entry.older.newer = entry.newer;
    else this.oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else this.newest = entry.older;
    entry.older = entry.newer = undefined;
  }
}

export const JWT_SIGN_METHODS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'] as const;
export type JwtSignMethod = (typeof JWT_SIGN_METHODS)[number];

export interface JwtOptions {
  signMethod: JwtSignMethod;
  /** Signs (and verifies) tokens; absent: this member only verifies ("verify-only"). */
  privateKey?: KeyObject;
  /** Verifies tokens; derived from privateKey when absent. */
  publicKey: KeyObject;
  ttlMs: number;
  now: () => number;
}

export class JwtTokens implements TokenProvider {
  readonly kind = 'jwt';
  private readonly verified = new Map<string, { info: TokenInfo; expiresAtMs: number }>();

  constructor(private readonly options: JwtOptions) {}

  newPrefix(): string {
    return '';
  }

  onApplied(): void {}

  /** The cache of verified tokens is bounded and checks expiry on lookup: nothing to sweep. */
  sweep(): void {}

  close(): void {}

  async issue(user: string, revision: number): Promise<string> {
    if (!this.options.privateKey) {
      throw authError('verifyOnly');
    }
    const expiresAtSeconds = Math.floor((this.options.now() + this.options.ttlMs) / 1000);
    const { SignJWT } = await loadJose();
    return new SignJWT({ username: user, revision })
      .setProtectedHeader({ alg: this.options.signMethod })
      .setExpirationTime(expiresAtSeconds)
      .sign(this.options.privateKey);
  }

  verify(token: string): TokenInfo | undefined | Promise<TokenInfo | undefined> {
    const now = this.options.now();
    const cached = this.verified.get(token);
    if (cached) return cached.expiresAtMs > now ? cached.info : undefined;
    return this.verifySignature(token, now);
  }

  private async verifySignature(token: string, now: number): Promise<TokenInfo | undefined> {
    const { jwtVerify } = await loadJose();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.options.publicKey, { algorithms: [this.options.signMethod], currentDate: new Date(now) }));
    } catch {
      return undefined;
    }
    const { username, revision, exp } = payload;
    if (typeof username !== 'string' || typeof revision !== 'number' || !Number.isSafeInteger(revision) || typeof exp !== 'number') return undefined;
    const info: TokenInfo = { user: username, authRevision: revision };
    if (this.verified.size >= jwtVerifiedTokensMax) this.verified.clear();
    this.verified.set(token, { info, expiresAtMs: exp * 1000 });
    return info;
  }
}

/**
 * jose is loaded on first use: importing it takes 200–370 ms here (measured 2026-12-06 under
 * load), which every member start and every `lichen` command would pay for JWTs they never use.
 */
function loadJose(): Promise<typeof import('jose')> {
  return import('jose');
}

/** `--auth-token` parsed: etcd's syntax "simple" or "jwt,pub-key=<path>,priv-key=<path>,sign-method=<alg>,ttl=<duration>". */
export type AuthTokenSpec =
  | { kind: 'simple' }
  | { kind: 'jwt'; signMethod: JwtSignMethod; publicKeyPath?: string; privateKeyPath?: string; ttlMs: number };

const JWT_OPTION_NAMES = new Set(['pub-key', 'priv-key', 'sign-method', 'ttl']);

export function parseAuthTokenSpec(text: string): AuthTokenSpec {
  const [kind, ...pairs] = text.split(',');
  const options = new Map<string, string>();
  for (const pair of pairs) {
    const parts = pair.split('=');
    if (parts.length !== 2) throw invalidOption(`"${pair}" is not name=value`);
    if (options.has(parts[0]!)) throw invalidOption(`"${parts[0]}" is given twice`);
    options.set(parts[0]!, parts[1]!);
  }
  if (kind === 'simple') return { kind: 'simple' };
  if (kind !== 'jwt') throw invalidOption(`unknown token type "${kind}" (simple or jwt)`);
  for (const name of options.keys()) if (!JWT_OPTION_NAMES.has(name)) throw invalidOption(`unknown jwt option "${name}" (pub-key, priv-key, sign-method, ttl)`);
  const signMethod = options.get('sign-method') ?? '';
  if (!(JWT_SIGN_METHODS as readonly string[]).includes(signMethod)) {
    throw invalidOption(`sign-method must be one of ${JWT_SIGN_METHODS.join(', ')}${signMethod ? `, not "${signMethod}"` : ''}`);
  }
  const publicKeyPath = options.get('pub-key') || undefined;
  const privateKeyPath = options.get('priv-key') || undefined;
  if (!privateKeyPath && (signMethod.startsWith('HS') || !publicKeyPath)) {
    throw invalidOption(signMethod.startsWith('HS') ? 'HMAC signing needs priv-key (the secret)' : 'needs priv-key (to sign) or pub-key (to verify only)');
  }
  const ttl = options.get('ttl');
  const ttlMs = ttl === undefined || ttl === '' ? JWT_TTL_MS_DEFAULT : parseGoDurationMs(ttl);
  return { kind: 'jwt', signMethod: signMethod as JwtSignMethod, publicKeyPath, privateKeyPath, ttlMs };
}

/** Reads the keys a JWT spec names; throws a clear error for a missing or mismatched key. */
export function loadJwtKeys(spec: Extract<AuthTokenSpec, { kind: 'jwt' }>): { privateKey?: KeyObject; publicKey: KeyObject } {
  const read = (path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw invalidOption(`cannot read ${path}: ${(error as Error).message}`);
    }
  };
  try {
    if (spec.signMethod.startsWith('HS')) {
      const secret = createSecretKey(read(spec.privateKeyPath!));
      return { privateKey: secret, publicKey: secret };
    }
    const privateKey = spec.privateKeyPath ? createPrivateKey(read(spec.privateKeyPath)) : undefined;
    const publicKey = spec.publicKeyPath ? createPublicKey(read(spec.publicKeyPath)) : createPublicKey(privateKey!);
    const expected = spec.signMethod.startsWith('ES') ? 'ec' : 'rsa';
    for (const key of [privateKey, publicKey]) {
      if (key && key.asymmetricKeyType !== expected && !(expected === 'rsa' && key.asymmetricKeyType === 'rsa-pss')) {
        throw invalidOption(`${spec.signMethod} needs ${expected.toUpperCase()} keys, got ${key.asymmetricKeyType}`);
      }
    }
    if (privateKey && spec.publicKeyPath) {
      const derived = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
      if (!derived.equals(publicKey.export({ type: 'spki', format: 'der' }))) throw invalidOption("public and private keys don't match");
    }
    return { privateKey, publicKey };
  } catch (error) {
    if (error instanceof LichenError) throw error;
    throw invalidOption(`cannot load the key: ${(error as Error).message}`);
  }
}

/** Go's time.ParseDuration for what a ttl needs: "300s", "5m", "1h30m", "1.5h", "500ms". */
export function parseGoDurationMs(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const match = part.exec(text);
    if (!match) throw invalidOption(`invalid duration "${text}" (e.g. 300s, 5m, 1h30m)`);
    total += Number(match[1]) * units[match[2]!]!;
    at = part.lastIndex;
  }
  if (text === '' || total < 1) throw invalidOption(`invalid duration "${text}": must be at least 1ms`);
  return Math.round(total);
}

function invalidOption(reason: string): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, `invalid --auth-token: ${reason}`);
}
