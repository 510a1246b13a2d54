/**
 * The 64-bit advisory lock key of a resource: FNV-1a 64 of its namespace and name, as the signed
 * `bigint` PostgreSQL's `pg_advisory_lock(bigint)` takes.
 *
 * Not `hashtext`: it is undocumented and has changed between major versions, so two holdfast
 * versions (or two servers) could disagree on a key. FNV-1a is fixed, runs synchronously on every
 * runtime without a crypto module, and spreads names well enough: a collision only makes two names
 * wait on each other (the fence row, keyed by the full name, still tells their tokens apart).
 *
 * @module
 */

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;
const encoder = new TextEncoder();

/**
 * The advisory lock key of `name` in `namespace`: FNV-1a 64 over the UTF-8 bytes of the namespace,
 * a NUL byte (so that `("ab", "c")` and `("a", "bc")` differ) and the name, read as a signed 64-bit
 * integer. The same inputs give the same key on every runtime and in every version.
 */
export function advisoryKey(namespace: string, name: string): bigint {
  let hash = FNV_OFFSET;
  const bytes = [...encoder.encode(namespace), 0, ...encoder.encode(name)];
  for (const byte of bytes) {
    hash ^= BigInt(byte);
    hash = (hash * FNV_PRIME) & MASK;
  }
  return BigInt.asIntN(64, hash);
}

/**
 * How `pg_locks` shows a `pg_advisory_lock(key bigint)`: `classid` the high 32 bits, `objid` the
 * low 32 bits (both unsigned, as `oid`), `objsubid` 1 (2 is the two-`int4` form).
 */
export function lockTableIds(key: bigint): { classid: number; objid: number } {
  const unsigned = BigInt.asUintN(64, key);
  return { classid: Number(unsigned >> 32n), objid: Number(unsigned & 0xffffffffn) };
}
