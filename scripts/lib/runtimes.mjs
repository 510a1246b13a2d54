// @ts-self-types="./runtimes.d.mts"
/**
 * Where the runtime binaries `npm install` fetched live in a checkout: the Deno binary, the
 * Node 22/24/26 binaries and the Bun binary under node_modules. The one place the scripts, the benchmark, the test
 * support, scripts/test_all.mjs and build_npm.ts look them up (testing/holder_process.ts, a public
 * test kit, keeps its own lookup: `HOLDFAST_DENO` / `HOLDFAST_NODE` / `HOLDFAST_BUN`, then the
 * PATH).
 *
 * Plain JavaScript with JSDoc types (declared in runtimes.d.mts) on purpose: scripts/test_all.mjs
 * imports it on whatever Node the machine has, Node 20 included, which runs no TypeScript.
 *
 * @module
 */
import { accessSync, closeSync, constants, openSync, readSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root this module lives in (scripts/lib/ is two levels down). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The Node majors npm installs as `node22`, `node24`, `node26` (package.json). */
export const NODE_MAJORS = /** @type {const} */ ([22, 24, 26]);

/**
 * Whether `file` is an executable binary: it exists, may be executed, and does not start with
 * `#!` (a launcher script, such as npm's `.bin/deno`, runs the runtime as its child, so a
 * SIGKILL or SIGSTOP meant for the runtime would hit the launcher instead).
 *
 * @param {string} file
 * @returns {boolean}
 */
export function isBinary(file) {
  try {
    accessSync(file, constants.X_OK);
    const fd = openSync(file, "r");
    try {
      const head = new Uint8Array(2);
      readSync(fd, head, 0, 2, 0);
      return !(head[0] === 0x23 && head[1] === 0x21); // "#!"
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * Where the Deno binary may be, best first: the deno package's own binary (its postinstall puts
 * it there), the platform package's (`@deno/<platform>-<arch>-glibc`, then without `-glibc`),
 * then npm's `.bin/deno` (a link to the binary, or a launcher script that is skipped).
 *
 * @param {string} [root] the checkout whose node_modules to look in (default: this one)
 * @returns {string[]} absolute paths
 */
export function denoCandidates(root = REPO_ROOT) {
  return [
    "node_modules/deno/deno",
    `node_modules/@deno/${process.platform}-${process.arch}-glibc/deno`,
    `node_modules/@deno/${process.platform}-${process.arch}/deno`,
    "node_modules/.bin/deno",
  ].map((p) => path.join(root, p));
}

/**
 * The Deno binary npm installed: the first of {@linkcode denoCandidates} that
 * {@linkcode isBinary}, or undefined when there is none.
 *
 * @param {string} [root]
 * @returns {string | undefined}
 */
export function denoBinary(root = REPO_ROOT) {
  return denoCandidates(root).find(isBinary);
}

/**
 * The path of Node `major`'s binary under node_modules (whether or not it is installed).
 *
 * @param {number} [major] 22, 24 or 26 (default 24)
 * @param {string} [root]
 * @returns {string}
 */
export function nodeBinary(major = 24, root = REPO_ROOT) {
  return path.join(root, "node_modules", `node${major}`, "bin", "node");
}

/**
 * The path of the Bun binary under node_modules (whether or not it is installed): the bun
 * package's postinstall puts the real binary at `bin/bun.exe` on every platform, and npm's
 * `.bin/bun` links to it.
 *
 * @param {string} [root]
 * @returns {string}
 */
export function bunBinary(root = REPO_ROOT) {
  return path.join(root, "node_modules", "bun", "bin", "bun.exe");
}

/**
 * Points `HOLDFAST_DENO`, `HOLDFAST_NODE` and `HOLDFAST_BUN` (read by testing/holder_process.ts
 * to start the other runtimes) at the binaries under `root`'s node_modules, where they are not
 * set already: Deno as {@linkcode denoBinary} finds it (left unset when there is none), Node 24,
 * Bun where {@linkcode bunBinary} is a binary.
 *
 * @param {string} [root]
 * @returns {void}
 */
export function setRuntimeEnv(root = REPO_ROOT) {
  const deno = denoBinary(root);
  if (process.env.HOLDFAST_DENO === undefined && deno !== undefined) {
    process.env.HOLDFAST_DENO = deno;
  }
  process.env.HOLDFAST_NODE ??= nodeBinary(24, root);
  const bun = bunBinary(root);
  if (process.env.HOLDFAST_BUN === undefined && isBinary(bun)) process.env.HOLDFAST_BUN = bun;
}
