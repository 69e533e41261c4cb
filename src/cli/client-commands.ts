// The client commands: put, get, del, watch, txn, lease *, member *, status, compact,
// move-leader. Each parses its flags, makes one or a few calls through a CliClient, and prints
// in the chosen format. Errors from the cluster reach main.ts, which prints them and exits 1.
import { setTimeout as delay } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { Event, ResponseHeader } from '../mvcc/types.js';
import { readFileSync } from 'node:fs';
import type { ClientTls } from '../client/tls.js';
import { booleanFlag, integerFlag, parseBoolean, parseInteger, stringFlag, UsageError, type FlagSpec, type ParsedArgs } from './args.js';
import type { CliAlarm, CliClient, CliMember, ClientOptions, Exact, WithHeader } from './client-port.js';
import {
  alarmsJson,
  deleteJson,
  headerOnlyJson,
  leaseGrantJson,
  leaseKeepAliveJson,
  leaseListJson,
  leaseTimeToLiveJson,
  membersJson,
  putJson,
  rangeJson,
  statusesJson,
  txnJson,
  watchJson,
} from './etcd-json.js';
import { expectPositionals, type Command, type CommandContext } from './command.js';
import { EXIT_FAILURE, EXIT_UNAVAILABLE } from './dispatch.js';
import {
  formatDelete,
  formatEvent,
  formatId,
  formatJson,
  formatLeaseGranted,
  formatLeaseList,
  formatLeaseTimeToLive,
  formatMembers,
  formatPut,
  formatRange,
  formatStatusTable,
  formatTxn,
  linesToBuffer,
  OUTPUT_FORMATS,
  type Line,
  type OutputFormat,
} from './format.js';
import { keyRange, parseHexId, toBytes } from './keys.js';
import { parseTxnInput, TXN_LINES_MAX } from './txn-input.js';

export const DEFAULT_ENDPOINT = '127.0.0.1:2379';
export const DEFAULT_TIMEOUT_MS = 5_000;
/** Values and txn input read from stdin are capped: etcd refuses requests over 1.5 MiB anyway. */
export const STDIN_BYTES_MAX = 16 * 1024 * 1024;
/** Endpoints beyond this count are a typo, not a cluster. */
export const ENDPOINTS_MAX = 64;

export const CLIENT_FLAGS: readonly FlagSpec[] = [
  {
    name: 'endpoints',
    type: 'string',
    valueName: 'host:port,...',
    description: `Cluster endpoints (default: LICHEN_ENDPOINTS, else ${DEFAULT_ENDPOINT})`,
  },
  { name: 'timeout', type: 'string', valueName: 'duration', description: 'How long a command may take, every endpoint tried: 500ms, 5s, 1m (default: 5s, or LICHEN_TIMEOUT)' },
  { name: 'cacert', type: 'string', valueName: 'path', description: "TLS: verify the members' certificates with this CA bundle (also LICHEN_CACERT)" },
  { name: 'cert', type: 'string', valueName: 'path', description: 'TLS: client certificate, for members with --client-cert-auth (also LICHEN_CERT)' },
  { name: 'key', type: 'string', valueName: 'path', description: 'TLS: private key of --cert (also LICHEN_KEY)' },
  {
    name: 'insecure-skip-tls-verify',
    type: 'boolean',
    description: "TLS without verifying the members' certificates, for members with --auto-tls (also LICHEN_INSECURE_SKIP_TLS_VERIFY)",
  },
  { name: 'write-out', short: 'w', type: 'string', choices: OUTPUT_FORMATS, valueName: 'simple|json', description: 'Output format (default: simple)' },
  { name: 'user', type: 'string', valueName: 'name[:password]', description: 'Log in as this user when auth is enabled (default: LICHEN_USER)' },
  { name: 'password', type: 'string', valueName: 'password', description: 'The password, when --user has none (default: LICHEN_PASSWORD)' },
];

/** --user name[:password] and --password (or LICHEN_USER, LICHEN_PASSWORD), as etcdctl takes them. */
export function resolveAuth(args: ParsedArgs, env: Record<string, string | undefined>): ClientOptions['auth'] {
  const userFlag = stringFlag(args, 'user');
  const passwordFlag = stringFlag(args, 'password');
  const raw = userFlag ?? (env.LICHEN_USER || undefined);
  const explicit = passwordFlag ?? (userFlag === undefined ? env.LICHEN_PASSWORD || undefined : undefined);
  const where = userFlag !== undefined ? '--user' : 'LICHEN_USER';
  if (raw === undefined) {
    if (passwordFlag !== undefined) throw new UsageError('--password needs --user');
    return undefined;
  }
  const colon = raw.indexOf(':');
  const user = colon < 0 ? raw : raw.slice(0, colon);
  if (user === '') throw new UsageError(`${where} needs a user name`);
  if (colon >= 0 && explicit !== undefined) throw new UsageError(`give the password in ${where} name:password or with --password, not both`);
  const password = colon >= 0 ? raw.slice(colon + 1) : explicit;
  if (password === undefined) throw new UsageError(`${where} ${user} needs a password: ${where} ${user}:<password>, or --password`);
  return { user, password };
}

export function resolveEndpoints(args: ParsedArgs, env: Record<string, string | undefined>): string[] {
  const raw = stringFlag(args, 'endpoints') ?? (env.LICHEN_ENDPOINTS || DEFAULT_ENDPOINT);
  const endpoints = raw
    .split(',')
    .map((e) => e.trim().replace(/^(https?|grpc):\/\//, ''))
    .filter((e) => e !== '');
  const where = stringFlag(args, 'endpoints') !== undefined ? '--endpoints' : 'LICHEN_ENDPOINTS';
  if (endpoints.length === 0) throw new UsageError(`${where} lists no endpoint`);
  if (endpoints.length > ENDPOINTS_MAX) throw new UsageError(`${where} lists more than ${ENDPOINTS_MAX} endpoints`);
  for (const endpoint of endpoints) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(endpoint)) {
      throw new UsageError(`invalid endpoint in ${where}: "${endpoint}" (expected host:port)`);
    }
  }
  return endpoints;
}

/** The TLS flags of the client commands, with the environment variable each falls back to. */
export const TLS_FLAG_ENV = {
  cacert: 'LICHEN_CACERT',
  cert: 'LICHEN_CERT',
  key: 'LICHEN_KEY',
  'insecure-skip-tls-verify': 'LICHEN_INSECURE_SKIP_TLS_VERIFY',
} as const;

/**
 * TLS towards the cluster, as etcdctl decides it: on when any TLS flag is given or an endpoint
 * says https://; undefined means cleartext. Files are read here, so a wrong path is a usage error.
 */
export function resolveClientTls(
  args: ParsedArgs,
  env: Record<string, string | undefined>,
  readFile: (path: string) => Buffer = readFileSync,
): ClientTls | undefined {
  const setting = (flag: keyof typeof TLS_FLAG_ENV): { value: string; where: string } | undefined => {
    const fromFlag = flag === 'insecure-skip-tls-verify' ? (booleanFlag(args, flag) ? 'true' : undefined) : stringFlag(args, flag);
    if (fromFlag !== undefined) return { value: fromFlag, where: `--${flag}` };
    const fromEnv = env[TLS_FLAG_ENV[flag]];
    return fromEnv ? { value: fromEnv, where: TLS_FLAG_ENV[flag] } : undefined;
  };
  const read = (flag: 'cacert' | 'cert' | 'key'): Buffer | undefined => {
    const found = setting(flag);
    if (found === undefined) return undefined;
    try {
      return readFile(found.value);
    } catch (error) {
      throw new UsageError(`cannot read ${found.where} file ${found.value}: ${(error as Error).message}`);
    }
  };
  const skip = setting('insecure-skip-tls-verify');
  const tls: ClientTls = {
    ca: read('cacert'),
    cert: read('cert'),
    key: read('key'),
    insecureSkipVerify: skip !== undefined && parseBoolean(skip.value, skip.where),
  };
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw new UsageError('--cert and --key must be given together');
  const rawEndpoints = stringFlag(args, 'endpoints') ?? env.LICHEN_ENDPOINTS ?? '';
  const wanted = tls.ca !== undefined || tls.cert !== undefined || tls.insecureSkipVerify || /(^|,)\s*https:\/\//.test(rawEndpoints);
  return wanted ? tls : undefined;
}

/** "500ms", "5s", "1m"; a bare integer is milliseconds. */
export function parseDurationMs(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (match === null) throw new UsageError(`invalid value for ${what}: "${text}" (expected a duration such as 500ms, 5s or 1m)`);
  const amount = Number(match[1]);
  const unit = match[2] ?? 'ms';
  const ms = Math.round(amount * (unit === 'm' ? 60_000 : unit === 's' ? 1000 : 1));
  if (ms < 1 || ms > 3_600_000) throw new UsageError(`invalid value for ${what}: "${text}" (between 1ms and 1h)`);
  return ms;
}

function outputFormat(args: ParsedArgs): OutputFormat {
  return (stringFlag(args, 'write-out') as OutputFormat | undefined) ?? 'simple';
}

function print(context: CommandContext, lines: readonly Line[]): void {
  if (lines.length > 0) context.stdout.write(linesToBuffer(lines));
}

/** Prints a response in the chosen format: simple lines, or with -w json the object etcdctl prints (see etcd-json.ts). */
function printResponse(context: CommandContext, args: ParsedArgs, output: { simple: () => Line[]; json: () => unknown }): void {
  print(context, outputFormat(args) === 'json' ? formatJson(output.json()) : output.simple());
}

/** --timeout, else LICHEN_TIMEOUT, else 5 s. */
export function resolveTimeoutMs(args: ParsedArgs, env: Record<string, string | undefined>): number {
  const timeout = stringFlag(args, 'timeout');
  if (timeout !== undefined) return parseDurationMs(timeout, '--timeout');
  return env.LICHEN_TIMEOUT ? parseDurationMs(env.LICHEN_TIMEOUT, 'LICHEN_TIMEOUT') : DEFAULT_TIMEOUT_MS;
}

export async function withClient<T>(args: ParsedArgs, context: CommandContext, use: (client: CliClient) => Promise<T>): Promise<T> {
  const endpoints = resolveEndpoints(args, context.env);
  const auth = resolveAuth(args, context.env);
  const tls = resolveClientTls(args, context.env);
  const client = await context.openClient({ endpoints, timeoutMs: resolveTimeoutMs(args, context.env), ...(auth && { auth }), ...(tls && { tls }) });
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

/** Reads all of stdin (bounded): for `txn` and for `put <key>` without a value. */
export async function readAll(stream: Readable, bytesMax = STDIN_BYTES_MAX): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buffer.length;
    if (total > bytesMax) throw new UsageError(`stdin is larger than ${bytesMax} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

export function clientCommand(
  spec: Omit<Command, 'flags' | 'run'> & {
    flags?: readonly FlagSpec[];
    run(args: ParsedArgs, context: CommandContext, command: Command): Promise<number>;
  },
): Command {
  const command: Command = {
    ...spec,
    flags: [...(spec.flags ?? []), ...CLIENT_FLAGS],
    run: (args, context) => spec.run(args, context, command),
  };
  return command;
}

const putCommand = clientCommand({
  name: 'put',
  usage: '<key> [<value>]',
  summary: 'Write a key (the value is read from stdin when not given)',
  flags: [
    { name: 'lease', type: 'string', valueName: 'id', description: 'Attach the key to this lease (hex id)' },
    { name: 'prev-kv', type: 'boolean', description: 'Print the previous key and value' },
  ],
  async run(args, context, command) {
    const [key, valueText] = expectPositionals(args, command, 1, 2);
    if (valueText === undefined && context.interactive) {
      throw new UsageError('put needs a value (it reads stdin only when stdin is not a terminal)', command.name);
    }
    const value = valueText !== undefined ? toBytes(valueText) : new Uint8Array(await readAll(context.stdin));
    const lease = stringFlag(args, 'lease');
    const request = {
      key: toBytes(key as string),
      value,
      lease: lease === undefined ? 0n : parseHexId(lease, 'lease id'),
      prevKv: booleanFlag(args, 'prev-kv'),
    };
    const response = await withClient(args, context, (client) => client.put(request));
    printResponse(context, args, { simple: () => formatPut(response), json: () => putJson(response) });
    return 0;
  },
});

const getCommand = clientCommand({
  name: 'get',
  usage: '<key>',
  summary: 'Read a key, or every key with a prefix or from a key on',
  flags: [
    { name: 'prefix', type: 'boolean', description: 'Every key starting with <key>' },
    { name: 'from-key', type: 'boolean', description: 'Every key >= <key>' },
    { name: 'limit', type: 'integer', valueName: 'n', description: 'At most n keys (0: no limit)' },
    { name: 'rev', type: 'integer', valueName: 'revision', description: 'Read as of this revision (0: current)' },
    { name: 'serializable', type: 'boolean', description: 'Read from the endpoint local state (fast, may be stale)' },
    { name: 'keys-only', type: 'boolean', description: 'Print keys only' },
    { name: 'count-only', type: 'boolean', description: 'Print the number of keys only' },
    { name: 'order', type: 'string', choices: ['ASCEND', 'DESCEND'], valueName: 'ASCEND|DESCEND', description: 'Sort by key' },
  ],
  async run(args, context, command) {
    const [key] = expectPositionals(args, command, 1);
    const range = keyRange(key as string, { prefix: booleanFlag(args, 'prefix'), fromKey: booleanFlag(args, 'from-key') });
    const order = stringFlag(args, 'order');
    const request = {
      ...range,
      limit: integerFlag(args, 'limit') ?? 0,
      revision: integerFlag(args, 'rev') ?? 0,
      serializable: booleanFlag(args, 'serializable'),
      keysOnly: booleanFlag(args, 'keys-only'),
      countOnly: booleanFlag(args, 'count-only'),
      ...(order === undefined ? {} : { sortOrder: order === 'ASCEND' ? (1 as const) : (2 as const), sortTarget: 0 as const }),
    };
    const response = await withClient(args, context, (client) => client.range(request));
    printResponse(context, args, {
      simple: () => formatRange(response, { keysOnly: request.keysOnly, countOnly: request.countOnly }),
      json: () => rangeJson(response),
    });
    return 0;
  },
});

const delCommand = clientCommand({
  name: 'del',
  usage: '<key>',
  summary: 'Delete a key, or every key with a prefix or from a key on; prints the count',
  flags: [
    { name: 'prefix', type: 'boolean', description: 'Every key starting with <key>' },
    { name: 'from-key', type: 'boolean', description: 'Every key >= <key>' },
    { name: 'prev-kv', type: 'boolean', description: 'Print the deleted keys and values' },
  ],
  async run(args, context, command) {
    const [key] = expectPositionals(args, command, 1);
    const range = keyRange(key as string, { prefix: booleanFlag(args, 'prefix'), fromKey: booleanFlag(args, 'from-key') });
    const response = await withClient(args, context, (client) =>
      client.deleteRange({ ...range, prevKv: booleanFlag(args, 'prev-kv') }),
    );
    printResponse(context, args, { simple: () => formatDelete(response), json: () => deleteJson(response) });
    return 0;
  },
});

const watchCommand = clientCommand({
  name: 'watch',
  usage: '<key>',
  summary: 'Print changes to a key (or prefix) until Ctrl-C',
  flags: [
    { name: 'prefix', type: 'boolean', description: 'Every key starting with <key>' },
    { name: 'from-key', type: 'boolean', description: 'Every key >= <key>' },
    { name: 'rev', type: 'integer', valueName: 'revision', description: 'Start at this revision (0: from now)' },
    { name: 'prev-kv', type: 'boolean', description: 'Also print the previous key and value' },
  ],
  async run(args, context, command) {
    const [key] = expectPositionals(args, command, 1);
    const range = keyRange(key as string, { prefix: booleanFlag(args, 'prefix'), fromKey: booleanFlag(args, 'from-key') });
    const json = outputFormat(args) === 'json';
    return withClient(args, context, async (client) => {
      // Runs until Ctrl-C (exit 0) or until the watch ends with an error (dispatch reports it).
      await new Promise<void>((resolve, reject) => {
        void client
          .watch(
            { ...range, startRevision: integerFlag(args, 'rev') ?? 0, prevKv: booleanFlag(args, 'prev-kv') },
            {
              onEvents(events: Exact<Event>[], _revision: number, header: Exact<ResponseHeader>) {
                if (json) print(context, formatJson(watchJson(header, events)));
                else for (const event of events) print(context, formatEvent(event));
              },
              onEnd: reject,
            },
          )
          .then((handle) => {
            if (context.signal.aborted) handle.cancel();
            else context.signal.addEventListener('abort', () => handle.cancel(), { once: true });
          }, reject);
        context.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      return 0;
    });
  },
});

const txnCommand = clientCommand({
  name: 'txn',
  usage: '',
  summary: 'Run a transaction read from stdin (compares, blank line, success ops, blank line, failure ops)',
  details: [
    'Input, as etcdctl txn takes it:',
    '  mod("key1") > "0"           compares: ver|create|mod|value|lease ("key") = != < > value',
    '',
    '  put key1 "overwrote-key1"   success ops: get <key> [--prefix], put <key> <value>, del <key>',
    '',
    '  put key1 "created-key1"     failure ops',
    'Example: printf \'value("k") = "a"\\n\\nput k b\\n\\nget k\\n\' | lichen txn',
  ].join('\n'),
  async run(args, context, command) {
    expectPositionals(args, command, 0);
    const text = context.interactive ? await readTxnInteractively(context) : (await readAll(context.stdin)).toString('utf8');
    const request = parseTxnInput(text);
    const response = await withClient(args, context, (client) => client.txn(request));
    printResponse(context, args, { simple: () => formatTxn(response), json: () => txnJson(response) });
    return 0;
  },
});

const TXN_PROMPTS = ['compares:', 'success requests (get, put, del):', 'failure requests (get, put, del):'];

/** As etcdctl txn -i: a prompt per section, each section ended by a blank line. */
async function readTxnInteractively(context: CommandContext): Promise<string> {
  const rl = createInterface({ input: context.stdin, terminal: false });
  const lines: string[] = [];
  let section = 0;
  context.stderr.write(`${TXN_PROMPTS[0]}\n`);
  try {
    for await (const line of rl) {
      if (lines.length >= TXN_LINES_MAX) throw new UsageError(`txn input has more than ${TXN_LINES_MAX} lines`);
      lines.push(line);
      if (line.trim() !== '') continue;
      section++;
      if (section === TXN_PROMPTS.length) break;
      context.stderr.write(`${TXN_PROMPTS[section]}\n`);
    }
  } finally {
    rl.close();
  }
  return lines.join('\n');
}

const compactCommand = clientCommand({
  name: 'compact',
  usage: '<revision>',
  summary: 'Discard the history before a revision',
  flags: [{ name: 'physical', type: 'boolean', description: 'Wait until the space is reclaimed' }],
  async run(args, context, command) {
    const [revisionText] = expectPositionals(args, command, 1);
    const revision = parseInteger(revisionText as string, 'revision', 1);
    const response = await withClient(args, context, (client) =>
      client.compact({ revision, physical: booleanFlag(args, 'physical') }),
    );
    printResponse(context, args, { simple: () => [`compacted revision ${revision}`], json: () => headerOnlyJson(response) });
    return 0;
  },
});

const leaseGrantCommand = clientCommand({
  name: 'lease grant',
  usage: '<ttl-seconds>',
  summary: 'Create a lease; keys attached to it go when it expires',
  async run(args, context, command) {
    const [ttlText] = expectPositionals(args, command, 1);
    const ttl = parseInteger(ttlText as string, 'ttl', 1);
    const response = await withClient(args, context, (client) => client.leaseGrant(ttl));
    printResponse(context, args, { simple: () => formatLeaseGranted(response.ID, response.TTL), json: () => leaseGrantJson(response) });
    return 0;
  },
});

const leaseRevokeCommand = clientCommand({
  name: 'lease revoke',
  usage: '<lease-id>',
  summary: 'Revoke a lease and delete its keys',
  async run(args, context, command) {
    const [idText] = expectPositionals(args, command, 1);
    const id = parseHexId(idText as string, 'lease id');
    const response = await withClient(args, context, (client) => client.leaseRevoke(id));
    printResponse(context, args, { simple: () => [`lease ${formatId(id)} revoked`], json: () => headerOnlyJson(response) });
    return 0;
  },
});

/** Renewals go out at a third of the TTL (as etcd's client does), never faster than this. */
const KEEPALIVE_INTERVAL_MIN_MS = 500;

const leaseKeepAliveCommand = clientCommand({
  name: 'lease keep-alive',
  usage: '<lease-id>',
  summary: 'Renew a lease until Ctrl-C (or once)',
  flags: [{ name: 'once', type: 'boolean', description: 'Renew once and exit' }],
  async run(args, context, command) {
    const [idText] = expectPositionals(args, command, 1);
    const id = parseHexId(idText as string, 'lease id');
    const once = booleanFlag(args, 'once');
    return withClient(args, context, async (client) => {
      // Bounded by the abort signal: each turn waits TTL/3 and stops on Ctrl-C.
      for (;;) {
        const response = await client.leaseKeepAliveOnce(id);
        if (response.TTL <= 0) {
          context.stderr.write(`lease ${formatId(id)} expired or revoked.\n`);
          return 1;
        }
        printResponse(context, args, { simple: () => [`lease ${formatId(id)} keepalived with TTL(${response.TTL})`], json: () => leaseKeepAliveJson(response) });
        if (once) return 0;
        const waitMs = Math.max(KEEPALIVE_INTERVAL_MIN_MS, (response.TTL * 1000) / 3);
        try {
          await delay(waitMs, undefined, { signal: context.signal });
        } catch {
          return 0;
        }
      }
    });
  },
});

const leaseTimeToLiveCommand = clientCommand({
  name: 'lease timetolive',
  usage: '<lease-id>',
  summary: "Show a lease's granted and remaining TTL",
  flags: [{ name: 'keys', type: 'boolean', description: 'Also list the keys attached to it' }],
  async run(args, context, command) {
    const [idText] = expectPositionals(args, command, 1);
    const id = parseHexId(idText as string, 'lease id');
    const withKeys = booleanFlag(args, 'keys');
    const response = await withClient(args, context, (client) => client.leaseTimeToLive(id, withKeys));
    printResponse(context, args, { simple: () => formatLeaseTimeToLive(response, withKeys), json: () => leaseTimeToLiveJson(response, withKeys) });
    return 0;
  },
});

const leaseListCommand = clientCommand({
  name: 'lease list',
  usage: '',
  summary: 'List the live leases',
  async run(args, context, command) {
    expectPositionals(args, command, 0);
    const response = await withClient(args, context, (client) => client.leaseLeases());
    printResponse(context, args, { simple: () => formatLeaseList(response.ids), json: () => leaseListJson(response) });
    return 0;
  },
});

function peerUrls(args: ParsedArgs, command: Command): string[] {
  const raw = stringFlag(args, 'peer-urls');
  if (raw === undefined || raw.trim() === '') throw new UsageError(`${command.name} needs --peer-urls host:port`, command.name);
  return raw.split(',').map((u) => {
    const url = u.trim();
    if (!/^([a-z]+:\/\/)?[^\s/]+:\d{1,5}$/i.test(url)) throw new UsageError(`invalid value for --peer-urls: "${url}" (expected host:port)`);
    return /^[a-z]+:\/\//i.test(url) ? url : `http://${url}`;
  });
}

const PEER_URLS_FLAG: FlagSpec = { name: 'peer-urls', type: 'string', valueName: 'host:port', description: "The member's peer address" };

const memberListCommand = clientCommand({
  name: 'member list',
  usage: '',
  summary: 'List the members: id, status, name, peer URLs, client URLs, is learner',
  async run(args, context, command) {
    expectPositionals(args, command, 0);
    const response = await withClient(args, context, (client) => client.memberList());
    printResponse(context, args, { simple: () => formatMembers(response.members), json: () => membersJson(response) });
    return 0;
  },
});

const memberAddCommand = clientCommand({
  name: 'member add',
  usage: '<name> --peer-urls host:port',
  summary: 'Add a member; then start it with the printed settings',
  flags: [PEER_URLS_FLAG, { name: 'learner', type: 'boolean', description: 'Add as a non-voting learner' }],
  async run(args, context, command) {
    const [name] = expectPositionals(args, command, 1);
    const urls = peerUrls(args, command);
    const response = await withClient(args, context, (client) => client.memberAdd(urls, booleanFlag(args, 'learner')));
    printResponse(context, args, { json: () => membersJson(response), simple: () => {
      const cluster = response.members
        .map((m) => {
          const memberName = m.id === response.member.id ? (name as string) : m.name;
          return `${memberName}=${(m.peerURLs[0] ?? '').replace(/^[a-z]+:\/\//i, '')}`;
        })
        .join(',');
      return [
        `Member ${formatId(response.member.id)} added${inCluster(response.header, 'to')}`,
        '',
        `LICHEN_NAME="${name as string}"`,
        `LICHEN_INITIAL_CLUSTER="${cluster}"`,
        `LICHEN_LISTEN_PEER="${(urls[0] as string).replace(/^[a-z]+:\/\//i, '')}"`,
      ];
    } });
    return 0;
  },
});

/** " to cluster c1" when the response names the cluster (etcdctl's wording), else nothing. */
function inCluster(header: { clusterId: bigint } | undefined, preposition: string): string {
  return header === undefined || header.clusterId === 0n ? '' : ` ${preposition} cluster ${formatId(header.clusterId)}`;
}

function memberChangeCommand(
  name: string,
  summary: string,
  verb: string,
  preposition: string,
  call: (client: CliClient, id: bigint, args: ParsedArgs, command: Command) => Promise<WithHeader<{ members: CliMember[] }>>,
  flags: readonly FlagSpec[] = [],
): Command {
  return clientCommand({
    name,
    usage: `<member-id>${flags.length > 0 ? ' --peer-urls host:port' : ''}`,
    summary,
    flags,
    async run(args, context, command) {
      const [idText] = expectPositionals(args, command, 1);
      const id = parseHexId(idText as string, 'member id');
      const response = await withClient(args, context, (client) => call(client, id, args, command));
      printResponse(context, args, {
        simple: () => [`Member ${formatId(id)} ${verb}${inCluster(response.header, preposition)}`],
        json: () => membersJson(response),
      });
      return 0;
    },
  });
}

const memberRemoveCommand = memberChangeCommand('member remove', 'Remove a member', 'removed', 'from', (client, id) =>
  client.memberRemove(id),
);
const memberPromoteCommand = memberChangeCommand('member promote', 'Promote a learner to a voting member', 'promoted', 'in', (client, id) =>
  client.memberPromote(id),
);
const memberUpdateCommand = memberChangeCommand(
  'member update',
  "Change a member's peer address",
  'updated',
  'in',
  (client, id, args, command) => client.memberUpdate(id, peerUrls(args, command)),
  [PEER_URLS_FLAG],
);

const statusCommand = clientCommand({
  name: 'status',
  usage: '',
  summary: 'Show every endpoint: member id, leader, term, raft index, revision, db size',
  async run(args, context, command) {
    expectPositionals(args, command, 0);
    const statuses = await withClient(args, context, (client) => client.statusAll());
    printResponse(context, args, { simple: () => formatStatusTable(statuses), json: () => statusesJson(statuses) });
    if (statuses.every((s) => s.status !== undefined)) return 0;
    // The table names why each endpoint failed; none answering is "cluster unavailable".
    return statuses.some((s) => s.status !== undefined) ? EXIT_FAILURE : EXIT_UNAVAILABLE;
  },
});

/** etcdctl prints an alarm as its protobuf text; Lichen names the member in hex, as elsewhere. */
const formatAlarms = (alarms: readonly CliAlarm[]): string[] => alarms.map((a) => `memberID:${formatId(a.memberId)} alarm:${a.alarm}`);

const alarmListCommand = clientCommand({
  name: 'alarm list',
  usage: '',
  summary: 'List the raised alarms (NOSPACE: the space quota is used up; CORRUPT: a member differs)',
  async run(args, context, command) {
    expectPositionals(args, command, 0);
    const response = await withClient(args, context, (client) => client.alarmList());
    printResponse(context, args, { simple: () => formatAlarms(response.alarms), json: () => alarmsJson(response) });
    return 0;
  },
});

const alarmDisarmCommand = clientCommand({
  name: 'alarm disarm',
  usage: '',
  summary: 'Clear every raised alarm (after freeing space: compact, then disarm); lists those cleared',
  async run(args, context, command) {
    expectPositionals(args, command, 0);
    const response = await withClient(args, context, (client) => client.alarmDisarm());
    printResponse(context, args, { simple: () => formatAlarms(response.alarms), json: () => alarmsJson(response) });
    return 0;
  },
});

const moveLeaderCommand = clientCommand({
  name: 'move-leader',
  usage: '<member-id>',
  summary: 'Transfer leadership to another member',
  async run(args, context, command) {
    const [idText] = expectPositionals(args, command, 1);
    const target = parseHexId(idText as string, 'member id');
    return withClient(args, context, async (client) => {
      const statuses = await client.statusAll();
      const leader = statuses.find((s) => s.status !== undefined && s.status.leader !== 0n)?.status?.leader ?? 0n;
      const response = await client.moveLeader(target);
      printResponse(context, args, { simple: () => [`Leadership transferred from ${formatId(leader)} to ${formatId(target)}`], json: () => headerOnlyJson(response) });
      return 0;
    });
  },
});

export const CLIENT_COMMANDS: readonly Command[] = [
  putCommand,
  getCommand,
  delCommand,
  watchCommand,
  txnCommand,
  leaseGrantCommand,
  leaseRevokeCommand,
  leaseKeepAliveCommand,
  leaseTimeToLiveCommand,
  leaseListCommand,
  memberListCommand,
  memberAddCommand,
  memberRemoveCommand,
  memberPromoteCommand,
  memberUpdateCommand,
  statusCommand,
  compactCommand,
  moveLeaderCommand,
  alarmListCommand,
  alarmDisarmCommand,
];
