/**
 * Parsing of Linux's `/proc/<pid>/stat`, shared by both adapters.
 *
 * @module
 */

/** The fields of `/proc/<pid>/stat` that process identity needs. */
export interface ProcStat {
  /** One-letter state: R, S, D, Z (zombie), X (dead), T (stopped), ... */
  readonly state: string;
  /** Field 22: start time in clock ticks since boot. */
  readonly startTime: number;
}

/**
 * Parses the content of `/proc/<pid>/stat`. The command name (field 2) may contain spaces and
 * parentheses, so fields are counted from the last `)`. Returns undefined on malformed input.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // After ") " come fields 3, 4, ...: field n sits at index n - 3.
  const fields = text.slice(close + 2).trim().split(/\s+/);
  const state = fields[0];
  const startTime = Number(fields[22 - 3]);
  if (!state || !Number.isSafeInteger(startTime)) return undefined;
  return { state, startTime };
}

/** Whether a process in `state` is finished (zombie or dead) though its PID still exists. */
export function isFinishedState(state: string): boolean {
  return state === "Z" || state === "X" || state === "x";
}
