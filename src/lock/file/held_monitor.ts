/**
 * One interval timer per check period for every lock this process holds, instead of one per
 * lock: creating and clearing a timer for each grant cost ~0.5 us on Node and ~3.4 us on Deno
 * per acquire + release.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";

/** A held lock that wants its files checked periodically. */
export interface Checked {
  /** Runs one check. Must not throw. */
  check(): void;
}

interface Group {
  timer: ReturnType<typeof setInterval>;
  readonly members: Set<Checked>;
}

const groups = new Map<number, Group>();

/**
 * Calls `member.check()` about every `period` ms (the first call may come sooner) until the
 * returned function is called. The timer never keeps the process alive; it stops itself at
 * the first tick that finds no member, so a lock taken and released in a loop reuses it.
 */
export function monitorHeld(rt: RuntimeAdapter, period: number, member: Checked): () => void {
  let group = groups.get(period);
  if (!group) {
    const members = new Set<Checked>();
    const timer = setInterval(() => {
      if (members.size === 0) {
        clearInterval(timer);
        if (groups.get(period)?.members === members) groups.delete(period);
        return;
      }
      for (const m of [...members]) m.check();
    }, period);
    rt.unrefTimer(timer);
    group = { timer, members };
    groups.set(period, group);
  }
  const members = group.members;
  members.add(member);
  return () => members.delete(member);
}
