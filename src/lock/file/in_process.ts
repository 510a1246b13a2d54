/**
 * What this isolate knows about its own file locks: the queue that serves its acquisitions of
 * one lock first come, first served (and keeps all but one of them off the filesystem), and the
 * locks it holds now, by key (the lock's real directory and name).
 *
 * @module
 */
import { LocalQueue } from "./local_queue.ts";
import type { OwnerRecord } from "./owner.ts";

/** The in-process queue of every lock of this isolate. */
export const queue: LocalQueue = new LocalQueue();

/** The locks this isolate holds now, by key: `inspect` answers from here, never by probing. */
export const localHolders: Map<string, { readonly owner: OwnerRecord }> = new Map();
