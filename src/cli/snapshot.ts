// `lichen snapshot save|status|restore`, with etcdctl's arguments, flags, messages and outputs.
// A snapshot is etcd 3.4's backend as a bbolt file plus its SHA-256 (src/backup), so these
// commands and etcdctl's are interchangeable on files from either system.
import { open, rename, rm } from 'node:fs/promises';
import { booleanFlag, stringFlag, UsageError, type FlagSpec, type ParsedArgs } from './args.js';
import { clientCommand, resolveEndpoints, withClient } from './client-commands.js';
import { expectPositionals, type Command } from './command.js';
import { formatBoxTable, formatBytes, formatId, formatJson, linesToBuffer, type Line } from './format.js';
import { AlarmType } from '../mvcc/types.js';
import { parseInitialCluster } from './serve-config.js';

const saveCommand = clientCommand({
  name: 'snapshot save',
  usage: '<file>',
  summary: "Save one member's backend to a file (etcd's snapshot format: a bbolt file and its SHA-256)",
  details:
    'Give exactly one endpoint: the snapshot is that member\'s state. The file is written to <file>.part,\n' +
    'checked against the SHA-256 the server sends after it, flushed, then renamed to <file>.',
  async run(args, context, command) {
    const [path] = expectPositionals(args, command, 1) as [string];
    const endpoints = resolveEndpoints(args, context.env);
    if (endpoints.length !== 1) throw new UsageError(`snapshot must be requested to one selected node, not multiple [${endpoints.join(' ')}]`);
    const partPath = `${path}.part`;
    try {
      await withClient(args, context, async (client) => {
        const file = await open(partPath, 'w', 0o600);
        try {
          for await (const chunk of client.snapshot(context.signal)) await file.write(chunk);
          await file.sync();
        } finally {
          await file.close();
        }
      });
      const hash = await (await import('../backup/index.js')).checkSnapshotHash(partPath);
      if (hash.kind !== 'ok') {
        throw new Error(hash.kind === 'none' ? 'the snapshot received has no SHA-256 trailer' : `the snapshot received is damaged: expected sha256 ${hash.expected}, got ${hash.actual}`);
      }
      await rename(partPath, path);
    } finally {
      await rm(partPath, { force: true });
    }
    context.stdout.write(`Snapshot saved at ${path}\n`);
    return 0;
  },
});

const STATUS_FORMATS = ['simple', 'json', 'table'];

const statusCommand: Command = {
  name: 'snapshot status',
  usage: '<file>',
  summary: 'Hash, revision, number of keys and size of a snapshot file (as etcdctl snapshot status)',
  details: 'Runs bbolt\'s integrity check first, as etcdctl does. Works on files from Lichen and from etcd.',
  flags: [{ name: 'write-out', short: 'w', type: 'string', choices: STATUS_FORMATS, valueName: 'simple|json|table', description: 'Output format (default: simple)' }],
  async run(args, context) {
    const [path] = expectPositionals(args, statusCommand, 1) as [string];
    const status = (await import('../backup/index.js')).snapshotStatus(path);
    const hash = status.hash.toString(16);
    const size = formatBytes(status.totalSize);
    let lines: Line[];
    switch (stringFlag(args, 'write-out') ?? 'simple') {
      case 'json':
        lines = formatJson(status);
        break;
      case 'table':
        lines = formatBoxTable(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], [[hash, String(status.revision), String(status.totalKey), size]]);
        break;
      default:
        lines = [`${hash}, ${status.revision}, ${status.totalKey}, ${size}`];
    }
    context.stdout.write(linesToBuffer(lines));
    return 0;
  },
};

/** etcd's AlarmType name, as etcdctl alarm list prints it. */
const alarmName = (alarm: number): string => Object.entries(AlarmType).find(([, value]) => value === alarm)?.[0] ?? String(alarm);

const RESTORE_FLAGS: readonly FlagSpec[] = [
  { name: 'name', type: 'string', valueName: 'name', description: 'This member\'s name, as for lichen serve --name (default: default)' },
  { name: 'data-dir', type: 'string', valueName: 'dir', description: 'The data directory to create; it must not exist or be empty (default: data/<name>)' },
  {
    name: 'initial-cluster',
    type: 'string',
    valueName: 'name=host:port,...',
    description: "The new cluster's members and peer addresses; http:// URLs as etcd's are accepted (default: this member alone)",
  },
  {
    name: 'initial-cluster-token',
    type: 'string',
    valueName: 'token',
    description: "The new cluster's token, as lichen serve --cluster-token (default: derived from the initial cluster)",
  },
  {
    name: 'initial-advertise-peer-urls',
    type: 'string',
    valueName: 'host:port',
    description: "This member's peer address; must match its entry in --initial-cluster (default: that entry, else 127.0.0.1:2380)",
  },
  { name: 'skip-hash-check', type: 'boolean', description: 'Restore a file without (or with a wrong) SHA-256 trailer, e.g. a db file copied from a data directory' },
  { name: 'engine', type: 'string', choices: ['lmdb', 'leveldb'], valueName: 'lmdb|leveldb', description: 'The storage engine the member will run, as lichen serve --engine (default: lmdb)' },
  { name: 'write-out', short: 'w', type: 'string', choices: ['simple', 'json'], valueName: 'simple|json', description: 'Output format (default: simple)' },
];

const restoreCommand: Command = {
  name: 'snapshot restore',
  usage: '<file>',
  summary: "Create a new cluster member's data directory from a snapshot (from Lichen or etcd 3.4)",
  details:
    'Restore the same file once per member, each with its own --name and the same --initial-cluster\n' +
    'and --initial-cluster-token, then start each with lichen serve --name <name> --data-dir <dir>\n' +
    '--listen-peer <its peer address>. Keys, their revisions and history since the last compaction,\n' +
    'leases, users and roles are kept; the membership is the new one. etcd lease ids at or above 2^53 get new ids (listed).',
  flags: RESTORE_FLAGS,
  async run(args, context) {
    const [snapshotPath] = expectPositionals(args, restoreCommand, 1) as [string];
    const options = restoreOptions(args, snapshotPath);
    const { restoreSnapshot } = await import('../server/restore.js');
    const result = await restoreSnapshot(options);
    if (stringFlag(args, 'write-out') === 'json') {
      context.stdout.write(
        linesToBuffer(
          formatJson({
            ...result,
            renumberedLeases: result.renumberedLeases.map(({ from, to }) => ({ from: formatId(from), to: formatId(to) })),
            droppedAlarms: result.droppedAlarms.map(({ memberId, alarm }) => ({ memberId: formatId(memberId), alarm: alarmName(alarm) })),
          }),
        ),
      );
      return 0;
    }
    const counted = (count: number, what: string): string => `${count} ${what}${count === 1 ? '' : 's'}`;
    const leases = counted(result.leases, 'lease');
    const auth = `${counted(result.users, 'user')} and ${counted(result.roles, 'role')}, authentication ${result.authEnabled ? 'enabled' : 'disabled'}`;
    const lines = [
      `Restored ${snapshotPath} into ${options.dataDir}: revision ${result.revision} (compacted at ${result.compactRevision}), ` +
        `${result.records} key versions, ${leases}, ${auth}; member ${formatId(result.memberId)} of cluster ${formatId(result.clusterId)}`,
      ...result.renumberedLeases.map(({ from, to }) => `lease ${formatId(from)} is now ${formatId(to)} (Lichen keeps lease ids below 2^53)`),
      ...result.droppedAlarms.map(
        ({ memberId, alarm }) => `alarm ${alarmName(alarm)} of member ${formatId(memberId)} was raised in the snapshot; the new cluster starts without it`,
      ),
    ];
    context.stdout.write(linesToBuffer(lines));
    return 0;
  },
};

function restoreOptions(args: ParsedArgs, snapshotPath: string) {
  const name = stringFlag(args, 'name') ?? 'default';
  const advertised = stringFlag(args, 'initial-advertise-peer-urls');
  const initialCluster = parseInitialCluster(stringFlag(args, 'initial-cluster') ?? `${name}=${advertised ?? '127.0.0.1:2380'}`, '--initial-cluster');
  const self = initialCluster.find((peer) => peer.name === name);
  if (!self) throw new UsageError(`--initial-cluster has no member named "${name}" (--name)`);
  if (advertised !== undefined) {
    const address = parseInitialCluster(`${name}=${advertised}`, '--initial-advertise-peer-urls')[0]!.peerAddress;
    if (address !== self.peerAddress) {
      throw new UsageError(`--initial-cluster has ${name}=${self.peerAddress} but missing from --initial-advertise-peer-urls=${advertised}`);
    }
  }
  return {
    snapshotPath,
    name,
    initialCluster,
    clusterToken: stringFlag(args, 'initial-cluster-token') ?? '',
    dataDir: stringFlag(args, 'data-dir') ?? `data/${name}`,
    skipHashCheck: booleanFlag(args, 'skip-hash-check'),
    engine: (stringFlag(args, 'engine') ?? 'lmdb') as 'lmdb' | 'leveldb',
  };
}

export const SNAPSHOT_COMMANDS: readonly Command[] = [saveCommand, statusCommand, restoreCommand];
