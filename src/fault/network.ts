// The peer network of a test cluster: one PeerProxy per member and a table of blocked directed
// pairs. Partitions are described by member names; the proxies see member ids (from the
// handshake), so the table is keyed by id once the cluster tells us the ids.
import { PeerProxy, type DirectedPair } from './proxy.js';
import { parseHostPort } from '../address.js';

/** Shapes of partition the nemesis can ask for (see partitionGroups). */
export type PartitionMode = 'majority-minority' | 'isolate-leader' | 'isolate-one' | 'bridge';
export const PARTITION_MODES: readonly PartitionMode[] = ['majority-minority', 'isolate-leader', 'isolate-one', 'bridge'];

export class PeerNetwork {
  private readonly proxies = new Map<string, PeerProxy>();
  private readonly idByName = new Map<string, number>();
  private readonly blocked = new Set<string>();
  /** Human-readable description of the current partition, or undefined when healed. */
  current: string | undefined;

  /** Starts a proxy for a member whose real peer listener is `listenPeer`; returns its address. */
  async addMember(name: string, listenPeer: string): Promise<string> {
    const proxy = new PeerProxy({
      target: parseHostPort(listenPeer),
      allows: (pair) => this.allows(pair),
    });
    const port = await proxy.start();
    this.proxies.set(name, proxy);
    return `127.0.0.1:${port}`;
  }

  /** Tells the network which member id belongs to which name (ids come from the cluster). */
  setMemberId(name: string, id: number): void {
    this.idByName.set(name, id);
  }

  allows(pair: DirectedPair): boolean {
    return !this.blocked.has(`${pair.from}>${pair.to}`);
  }

  /**
   * Splits the members into groups that cannot talk across. Members in no group keep talking to
   * everyone. `links` optionally re-allows chosen pairs (both directions), which makes a bridge.
   */
  partition(groups: string[][], description: string, links: [string, string][] = []): void {
    this.blocked.clear();
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.block(a, b);
      }
    }
    for (const [a, b] of links) {
      this.blocked.delete(this.key(a, b));
      this.blocked.delete(this.key(b, a));
    }
    this.current = description;
    this.refresh();
  }

  heal(): void {
    this.blocked.clear();
    this.current = undefined;
    this.refresh();
  }

  get blockedConnections(): number {
    let total = 0;
    for (const proxy of this.proxies.values()) total += proxy.blockedConnections;
    return total;
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    this.proxies.clear();
  }

  private block(from: string, to: string): void {
    this.blocked.add(this.key(from, to));
  }

  private key(from: string, to: string): string {
    const a = this.idByName.get(from);
    const b = this.idByName.get(to);
    if (a === undefined || b === undefined) throw new Error(`peer network: unknown member ${a === undefined ? from : to}`);
    return `${a}>${b}`;
  }

  private refresh(): void {
    for (const proxy of this.proxies.values()) proxy.refresh();
  }
}

/**
 * The groups (and bridge links) of one partition over `names`. `pick` chooses uniformly in
 * [0, n); `leader` is the current leader's name when known.
 */
export function partitionGroups(
  mode: PartitionMode,
  names: readonly string[],
  pick: (n: number) => number,
  leader: string | undefined,
): { groups: string[][]; links: [string, string][]; description: string } {
  const shuffled = shuffle(names, pick);
  const minoritySize = Math.floor((names.length - 1) / 2);
  switch (mode) {
    case 'majority-minority': {
      const minority = shuffled.slice(0, Math.max(1, minoritySize));
      const majority = shuffled.slice(minority.length);
      return { groups: [majority, minority], links: [], description: `majority [${majority}] | minority [${minority}]` };
    }
    case 'isolate-leader':
    case 'isolate-one': {
      const alone = mode === 'isolate-leader' && leader !== undefined ? leader : shuffled[0]!;
      const rest = names.filter((n) => n !== alone);
      const what = mode === 'isolate-leader' && leader !== undefined ? 'leader' : 'member';
      return { groups: [[alone], rest], links: [], description: `isolated ${what} ${alone} | [${rest}]` };
    }
    case 'bridge': {
      // Two halves that cannot see each other, and one member that sees both: it is in every
      // majority, yet neither half can form a majority on its own.
      const bridge = shuffled[0]!;
      const others = shuffled.slice(1);
      const half = Math.ceil(others.length / 2);
      const left = others.slice(0, half);
      const right = others.slice(half);
      const links: [string, string][] = [...left, ...right].map((n) => [bridge, n]);
      return {
        groups: [[bridge, ...left], right],
        links,
        description: `bridge ${bridge} between [${left}] and [${right}]`,
      };
    }
  }
}

function shuffle<T>(items: readonly T[], pick: (n: number) => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = pick(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
