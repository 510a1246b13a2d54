/**
 * Types of runtimes.mjs: where the runtime binaries `npm install` fetched live in a checkout.
 *
 * @module
 */

/** The repository root this module lives in. */
export declare const REPO_ROOT: string;

/** The Node majors npm installs as `node22`, `node24`, `node26`. */
export declare const NODE_MAJORS: readonly [22, 24, 26];

/** Whether `file` exists, may be executed and does not start with `#!` (a launcher script). */
export declare function isBinary(file: string): boolean;

/**
 * Where the Deno binary may be under `root` (default: this checkout), best first:
 * node_modules/deno/deno, node_modules/@deno/<platform>-<arch>-glibc/deno, the same without
 * `-glibc`, node_modules/.bin/deno.
 */
export declare function denoCandidates(root?: string): string[];

/** The first of {@linkcode denoCandidates} that {@linkcode isBinary}, or undefined. */
export declare function denoBinary(root?: string): string | undefined;

/** node_modules/node<major>/bin/node under `root` (default major 24), installed or not. */
export declare function nodeBinary(major?: number, root?: string): string;

/** node_modules/bun/bin/bun.exe under `root` (the bun package's binary), installed or not. */
export declare function bunBinary(root?: string): string;

/**
 * Sets `HOLDFAST_DENO` (to {@linkcode denoBinary}, when there is one), `HOLDFAST_NODE` (to
 * Node 24's binary) and `HOLDFAST_BUN` (to {@linkcode bunBinary}, when it is a binary) where
 * they are not set already.
 */
export declare function setRuntimeEnv(root?: string): void;
