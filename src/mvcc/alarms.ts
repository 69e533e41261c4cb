// The raised alarms (NOSPACE, CORRUPT), replicated like every other part of the state machine:
// raised and cleared only by applied commands, stored in the engine under prefix 'A' (so
// snapshots and restarts carry them), and the same on every member. Keyed as etcd keys them, by
// (member id, type); member id 0 is a key like any other.
import type { Engine, WriteOp } from '../engine/types.js';
import { PREFIX_ALARM, alarmKey, parseAlarmKey, prefixEnd } from './layout.js';
import { AlarmType, type AlarmMember } from './types.js';

const RAISED = Uint8Array.of(1);

export class AlarmTable {
  /** Sorted by type, then member id: the order of the engine keys and of Alarm GET. */
  private raised: AlarmMember[] = [];

  load(engine: Engine): void {
    this.raised = [];
    for (const [key] of engine.range({ start: Uint8Array.of(PREFIX_ALARM), end: prefixEnd(PREFIX_ALARM) })) {
      const { alarm, memberId } = parseAlarmKey(key);
      this.raised.push({ memberId, alarm: alarm as AlarmType });
    }
  }

  /** The raised alarms of one type, or of every type for NONE. */
  list(type: AlarmType = AlarmType.NONE): AlarmMember[] {
    return this.raised.filter((a) => type === AlarmType.NONE || a.alarm === type).map((a) => ({ ...a }));
  }

  has(type: AlarmType): boolean {
    return this.raised.some((a) => a.alarm === type);
  }

  /** Raises the alarm (a no-op when it is raised already) and returns it, as etcd's Activate does. */
  activate(memberId: number, alarm: AlarmType, ops: WriteOp[]): AlarmMember {
    if (this.find(memberId, alarm) < 0) {
      this.raised.push({ memberId, alarm });
      this.raised.sort((a, b) => a.alarm - b.alarm || a.memberId - b.memberId);
      ops.push({ type: 'put', key: alarmKey(alarm, memberId), value: RAISED });
    }
    return { memberId, alarm };
  }

  /** Clears the alarm; returns it, or undefined when it was not raised. */
  deactivate(memberId: number, alarm: AlarmType, ops: WriteOp[]): AlarmMember | undefined {
    const at = this.find(memberId, alarm);
    if (at < 0) return undefined;
    this.raised.splice(at, 1);
    ops.push({ type: 'del', key: alarmKey(alarm, memberId) });
    return { memberId, alarm };
  }

  private find(memberId: number, alarm: AlarmType): number {
    return this.raised.findIndex((a) => a.memberId === memberId && a.alarm === alarm);
  }
}
