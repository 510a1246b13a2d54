/**
 * The repository's trust rule on real directories with real owners and modes: a baseDir or
 * state directory that another user owns or can write is refused (STATE_DIR_UNTRUSTED), as
 * OpenSSH's StrictModes refuses such a home directory, unless `sharedGroup` names the group
 * trusted to share it. Owners other than this process's are made with chown, so those tests
 * need root; the non-root side runs in a child started as `nobody` through setpriv.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { JsonFileRepository } from "../../../src/repository/file/json_file_repository.ts";
import type { JsonFileRepositoryOptions } from "../../../src/repository/file/options.ts";
import { RepositoryError } from "../../../src/repository/errors.ts";
import type { RuntimeAdapter } from "../../../src/runtime/types.ts";
import { runtime } from "../../../src/runtime/select/current.ts";
import { HoldfastError } from "../../../src/errors/holdfast_error.ts";
import { faultyAdapter } from "./faulty_adapter.ts";
import { commandFor, CURRENT } from "../../_support/runtimes.ts";

const isWindows = process.platform === "win32";
const euid = process.geteuid?.();
const isRoot = euid === 0;
const needsRoot = !isRoot && "needs root to chown directories to other users";
/** Another user and group than this process's (nobody/nogroup on Linux). */
const OTHER = 65534;

let root = "";
let counter = 0;
const fresh = (prefix = "d") => path.join(root, `${prefix}-${++counter}`);
/** Creates a directory with exactly `mode` (and, as root, the owner and group given). */
function makeDir(at: string, mode: number, owner?: { uid?: number; gid?: number }): string {
  fs.mkdirSync(at, { recursive: true });
  if (owner) fs.chownSync(at, owner.uid ?? fs.statSync(at).uid, owner.gid ?? fs.statSync(at).gid);
  fs.chmodSync(at, mode);
  return at;
}

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-trust-"));
  // Searchable by all, so that the child started as another user can reach its directories.
  fs.chmodSync(root, 0o755);
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function repoAt<T = unknown>(
  baseDir: string,
  options: Partial<JsonFileRepositoryOptions<T>> = {},
): JsonFileRepository<T> {
  return new JsonFileRepository<T>({ baseDir, lockTimeout: 1000, ...options });
}

/** Every entry under `dir` (itself included): type, owner, mode, inode, content or link target. */
function snapshot(dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (p: string) => {
    const s = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!s) return;
    const key = path.relative(dir, p) || ".";
    const base = { mode: s.mode, uid: s.uid, gid: s.gid, ino: s.ino };
    if (s.isSymbolicLink()) out[key] = { ...base, link: fs.readlinkSync(p) };
    else if (s.isDirectory()) {
      out[key] = { ...base, dir: true };
      for (const entry of fs.readdirSync(p).sort()) walk(path.join(p, entry));
    } else out[key] = { ...base, content: fs.readFileSync(p, "utf8") };
  };
  walk(dir);
  return out;
}

interface Untrusted {
  code: string;
  path: string;
  ownerUid: number;
  ownerGid: number;
  mode: number;
  rule: string;
}

/** Asserts `error` is a STATE_DIR_UNTRUSTED naming `dir`, with a rule matching `rule`. */
function assertUntrusted(error: unknown, dir: string, rule: RegExp): Untrusted {
  assert.ok(error instanceof RepositoryError, `expected a RepositoryError, got ${error}`);
  assert.ok(error instanceof HoldfastError);
  const e = error as unknown as Untrusted & RepositoryError;
  assert.equal(e.code, "STATE_DIR_UNTRUSTED", `expected STATE_DIR_UNTRUSTED: ${e.message}`);
  assert.equal(e.path, dir);
  assert.ok(e.message.includes(dir), `the message names '${dir}': ${e.message}`);
  assert.match(e.rule, rule);
  assert.match(e.message, rule);
  assert.match(e.message, /\nTip: \S/);
  assert.ok(!e.tip.includes("\n"), "the Tip is one line");
  assert.match(e.help(), /symlink/);
  const s = fs.lstatSync(dir);
  assert.equal(e.ownerUid, s.uid);
  assert.equal(e.ownerGid, s.gid);
  assert.equal(e.mode, s.mode & 0o7777);
  return e;
}

/** Every call of the repository that touches `name`, or the base directory. */
function everyCall(repo: JsonFileRepository, name = "s"): [string, () => Promise<unknown>][] {
  return [
    ["save", () => repo.save(name, { by: "victim" })],
    ["update", () => repo.update(name, () => ({ by: "victim" }))],
    ["delete", () => repo.delete(name)],
    ["load", () => repo.load(name)],
    ["exists", () => repo.exists(name)],
    ["list", () => repo.list()],
    ["clean", () => repo.clean()],
  ];
}

/** Runs every call on a fresh repository and asserts each is refused naming `dir`, touching nothing. */
async function assertAllRefused(
  baseDir: string,
  dir: string,
  rule: RegExp,
  options: Partial<JsonFileRepositoryOptions<unknown>> = {},
  watch: string = baseDir,
): Promise<void> {
  const before = snapshot(watch);
  for (const [call, run] of everyCall(repoAt(baseDir, options))) {
    await assert.rejects(run, (error) => {
      assertUntrusted(error, dir, rule);
      return true;
    }, `${call} in '${baseDir}'`);
    assert.deepEqual(snapshot(watch), before, `${call} left everything as it was`);
  }
}

describe("JsonFileRepository trust rule", { skip: isWindows && "no POSIX owners or modes" }, () => {
  it("refuses a baseDir others can write (0777), touching nothing", async () => {
    const baseDir = makeDir(fresh(), 0o777);
    // A state someone planted there beforehand: load must not return it.
    makeDir(path.join(baseDir, "s"), 0o700);
    fs.writeFileSync(path.join(baseDir, "s", "state.json"), '{"by":"attacker"}');
    await assertAllRefused(baseDir, baseDir, /writable by others/);
  });

  it("refuses a baseDir its group can write (0770) when no group is shared", async () => {
    const baseDir = makeDir(fresh(), 0o770);
    await assertAllRefused(baseDir, baseDir, /writable by its group/);
  });

  it("refuses a baseDir with the sticky bit (1777): only an ancestor may be shared so", async () => {
    const baseDir = makeDir(fresh(), 0o1777);
    await assertAllRefused(baseDir, baseDir, /writable by others/);
  });

  it("refuses a baseDir owned by another user", { skip: needsRoot }, async () => {
    const baseDir = makeDir(fresh(), 0o700, { uid: OTHER, gid: OTHER });
    await assertAllRefused(baseDir, baseDir, new RegExp(`owned by uid ${OTHER}`));
    const e = await repoAt(baseDir).save("s", 1).catch((error) => error);
    assert.match(e.tip, /chown/);
  });

  it("refuses a state directory owned by another user, and one others can write", {
    skip: needsRoot,
  }, async () => {
    const baseDir = makeDir(fresh(), 0o700);
    const theirs = makeDir(path.join(baseDir, "s"), 0o700, { uid: OTHER });
    const before = snapshot(baseDir);
    const repo = repoAt(baseDir);
    for (const [call, run] of everyCall(repo).slice(0, 5)) {
      await assert.rejects(run, (error) => {
        assertUntrusted(error, theirs, new RegExp(`owned by uid ${OTHER}`));
        return true;
      }, call);
    }
    assert.deepEqual(snapshot(baseDir), before);
    fs.chownSync(theirs, 0, 0);
    fs.chmodSync(theirs, 0o757);
    for (const [call, run] of everyCall(repoAt(baseDir)).slice(0, 5)) {
      await assert.rejects(run, (error) => {
        assertUntrusted(error, theirs, /writable by others/);
        return true;
      }, call);
    }
    // Other states of the same repository are not affected.
    await repo.save("fine", 1);
    assert.equal(await repo.load("fine"), 1);
  });

  it("refuses a state directory that is a symlink, and reads nothing through it", async () => {
    const baseDir = makeDir(fresh(), 0o700);
    const elsewhere = makeDir(fresh("elsewhere"), 0o700);
    fs.writeFileSync(path.join(elsewhere, "state.json"), '{"by":"attacker"}');
    fs.symlinkSync(elsewhere, path.join(baseDir, "s"));
    const before = snapshot(root);
    for (const [call, run] of everyCall(repoAt(baseDir)).slice(0, 5)) {
      await assert.rejects(run, (error) => {
        assertUntrusted(error, path.join(baseDir, "s"), /symlink/);
        return true;
      }, call);
    }
    assert.deepEqual(snapshot(root), before, "nothing written through the symlink");
  });

  it("accepts a sticky world-writable ancestor (like /tmp), refuses one without the sticky bit", async () => {
    const sticky = makeDir(fresh("sticky"), 0o1777);
    const repo = repoAt(path.join(sticky, "base"));
    await repo.save("s", 1);
    assert.equal(await repo.load("s"), 1);
    assert.equal(fs.statSync(path.join(sticky, "base")).mode & 0o7777, 0o700);

    const open = makeDir(fresh("open"), 0o777);
    const before = snapshot(open);
    await assertAllRefused(path.join(open, "base"), open, /writable by others.*sticky/, {}, open);
    assert.deepEqual(snapshot(open), before, "baseDir was not created");
    // Deeper: the open directory is refused as any ancestor, however far up.
    await assert.rejects(repoAt(path.join(open, "a", "b", "base")).save("s", 1), (error) => {
      assertUntrusted(error, open, /sticky/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(open), []);
  });

  it("refuses an ancestor owned by another user, even with the sticky bit", {
    skip: needsRoot,
  }, async () => {
    const theirs = makeDir(fresh("theirs"), 0o1777, { uid: OTHER });
    await assertAllRefused(path.join(theirs, "base"), theirs, /owned by uid/, {}, theirs);
  });

  it("resolves a symlink in baseDir once and checks the real directories", async () => {
    const real = makeDir(fresh("real"), 0o700);
    const link = fresh("link");
    fs.symlinkSync(real, link);
    const repo = repoAt(link);
    await repo.save("s", 1);
    assert.equal(fs.readFileSync(path.join(real, "s", "state.json"), "utf8"), "1\n");
    // The link is retargeted after first use: the repository keeps to the checked directory.
    const other = makeDir(fresh("other"), 0o700);
    fs.unlinkSync(link);
    fs.symlinkSync(other, link);
    await repo.save("s", 2);
    assert.equal(await repo.load("s"), 2);
    assert.equal(fs.readFileSync(path.join(real, "s", "state.json"), "utf8"), "2\n");
    assert.deepEqual(fs.readdirSync(other), []);

    // A link to a directory others can write is refused, naming the real directory.
    const open = makeDir(fresh("open"), 0o777);
    const toOpen = fresh("link");
    fs.symlinkSync(open, toOpen);
    await assertAllRefused(toOpen, open, /writable by others/, {}, open);
  });

  it("refuses a state directory swapped for a symlink between two calls, writing nothing through it", async () => {
    const baseDir = makeDir(fresh(), 0o700);
    const repo = repoAt(baseDir);
    await repo.save("s", { by: "victim" });
    assert.deepEqual(await repo.load("s"), { by: "victim" });
    // Between two calls of the same instance, the state directory becomes a symlink.
    const elsewhere = makeDir(fresh("elsewhere"), 0o700);
    fs.writeFileSync(path.join(elsewhere, "state.json"), '{"by":"attacker"}');
    fs.renameSync(path.join(baseDir, "s"), path.join(baseDir, "s-moved"));
    fs.symlinkSync(elsewhere, path.join(baseDir, "s"));
    const before = snapshot(root);
    for (const [call, run] of everyCall(repo).slice(0, 5)) {
      await assert.rejects(run, (error) => {
        assertUntrusted(error, path.join(baseDir, "s"), /symlink/);
        return true;
      }, call);
    }
    assert.deepEqual(snapshot(root), before, "nothing written or read through the symlink");
    // Put back, the directory is accepted again.
    fs.unlinkSync(path.join(baseDir, "s"));
    fs.renameSync(path.join(baseDir, "s-moved"), path.join(baseDir, "s"));
    assert.deepEqual(await repo.load("s"), { by: "victim" });
  });

  it("checks the directory chain once per instance, then one lstat of the state directory", async () => {
    const faulty = faultyAdapter(runtime);
    const baseDir = makeDir(fresh(), 0o700);
    const repo = repoAt(baseDir, { runtime: faulty.adapter });
    await repo.save("s", 1);
    await repo.save("s", 2);
    await repo.load("s");
    const first = faulty.calls.length;
    assert.equal(await repo.load("s"), 2);
    const second = faulty.calls.slice(first).map((c) => `${c.op} ${c.path}`);
    assert.deepEqual(second, [
      `lstatIfExists ${path.join(baseDir, "s")}`,
      `readFile ${path.join(baseDir, "s", "state.json")}`,
    ]);
    assert.equal(faulty.calls.filter((c) => c.op === "realPath" && c.path === baseDir).length, 1);
  });
});

describe("JsonFileRepository trust rule for another uid", {
  skip: isWindows && "no POSIX owners or modes",
}, () => {
  /** The real adapter, but reporting `uid` as this process's. */
  const asUid = (uid: number | undefined): RuntimeAdapter =>
    new Proxy(runtime, {
      get: (obj, prop, receiver) => prop === "uid" ? () => uid : Reflect.get(obj, prop, receiver),
    });

  it("a process that is not root trusts its own and root's directories only", {
    skip: needsRoot,
  }, async () => {
    const mine = makeDir(fresh(), 0o700, { uid: 4242 });
    const repo = repoAt(mine, { runtime: asUid(4242) });
    await repo.save("s", 1); // /, the temp dirs (root's) and `mine` (4242's) are trusted
    assert.equal(await repo.load("s"), 1);
    const theirs = makeDir(fresh(), 0o700, { uid: 4343 });
    await assertAllRefused(theirs, theirs, /owned by uid 4343, not by this process's uid 4242/, {
      runtime: asUid(4242),
    });
  });

  it("where the uid cannot be known, checks the mode bits only", async () => {
    const unknown = asUid(undefined);
    const owned = makeDir(fresh(), 0o700, isRoot ? { uid: OTHER } : undefined);
    const repo = repoAt(owned, { runtime: unknown });
    await repo.save("s", 1);
    assert.equal(await repo.load("s"), 1);
    const open = makeDir(fresh(), 0o777);
    await assertAllRefused(open, open, /writable by others/, { runtime: unknown });
  });

  it("as nobody, in a child process: root's directories are trusted, another user's are not", {
    skip: (needsRoot || !fs.existsSync("/usr/bin/setpriv")) && "needs root and setpriv",
  }, () => {
    // The child must be able to reach the directories: a world-searchable parent.
    const top = makeDir(fresh("nobody"), 0o755);
    const mine = makeDir(path.join(top, "mine"), 0o700, { uid: OTHER, gid: OTHER });
    const rootOwned = makeDir(path.join(top, "root-owned"), 0o755);
    const state = makeDir(path.join(rootOwned, "s"), 0o700, { uid: OTHER, gid: OTHER });
    fs.writeFileSync(path.join(state, "state.json"), '{"by":"root"}');
    fs.chownSync(path.join(state, "state.json"), OTHER, OTHER);
    const theirs = makeDir(path.join(top, "theirs"), 0o755, { uid: 4343, gid: 4343 });
    const calls = [
      ["save", mine, "s"],
      ["load", mine, "s"],
      ["load", rootOwned, "s"],
      ["load", theirs, "s"],
    ];
    const [exe, ...args] = commandFor(CURRENT, "tests/_support/trust_probe.ts", [
      JSON.stringify(calls),
    ]);
    const denoDir = makeDir(path.join(top, "deno-dir"), 0o700, { uid: OTHER, gid: OTHER });
    const child = spawnSync(
      "/usr/bin/setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", exe, ...args],
      { encoding: "utf8", env: { ...process.env, DENO_DIR: denoDir, HOME: denoDir } },
    );
    assert.equal(child.status, 0, `child failed: ${child.stderr}`);
    const results = JSON.parse(child.stdout.trim().split("\n").pop()!);
    assert.deepEqual(results.slice(0, 3), [
      { ok: "saved" },
      { ok: { by: "probe" } },
      { ok: { by: "root" } },
    ]);
    assert.equal(results[3].code, "STATE_DIR_UNTRUSTED", JSON.stringify(results[3]));
    assert.match(results[3].message, /owned by uid 4343, not by this process's uid 65534/);
  });
});

describe(
  "JsonFileRepository sharedGroup",
  { skip: isWindows && "no POSIX owners or modes" },
  () => {
    // As root any group can be used; otherwise this process's own.
    const GROUP = isRoot ? OTHER : process.getegid?.() ?? 0;

    it("rejects an invalid sharedGroup with INVALID_ARGUMENT", () => {
      for (const sharedGroup of [-1, 1.5, Number.NaN, "100", 2 ** 32, null]) {
        assert.throws(
          () => repoAt(fresh(), { sharedGroup: sharedGroup as number }),
          { code: "INVALID_ARGUMENT", argument: "sharedGroup" },
          String(sharedGroup),
        );
      }
    });

    it("accepts a group-writable baseDir of the shared group and shares what it creates with it", async () => {
      const baseDir = makeDir(fresh(), 0o2770, { gid: GROUP });
      const repo = repoAt(baseDir, { sharedGroup: GROUP });
      await repo.save("s", 1);
      assert.equal(await repo.load("s"), 1);
      const dir = path.join(baseDir, "s");
      assert.equal((fs.statSync(dir).mode & 0o7777).toString(8), "2770");
      assert.equal(fs.statSync(dir).gid, GROUP);
      assert.equal((fs.statSync(path.join(dir, "state.json")).mode & 0o777).toString(8), "660");
      assert.equal(fs.statSync(path.join(dir, "state.json")).gid, GROUP);
      // Without the opt-in the same directory is refused.
      await assertAllRefused(baseDir, baseDir, /writable by its group/);
    });

    it("creates a missing baseDir 2770 in the shared group", async () => {
      const parent = makeDir(fresh(), 0o755);
      const baseDir = path.join(parent, "a", "base");
      await repoAt(baseDir, { sharedGroup: GROUP }).save("s", 1);
      for (const p of [path.join(parent, "a"), baseDir, path.join(baseDir, "s")]) {
        assert.equal((fs.statSync(p).mode & 0o7777).toString(8), "2770", p);
        assert.equal(fs.statSync(p).gid, GROUP, p);
      }
    });

    it("refuses a group-writable directory of another group", { skip: needsRoot }, async () => {
      const baseDir = makeDir(fresh(), 0o2770, { gid: 100 });
      await assertAllRefused(baseDir, baseDir, /group 100.*not the shared group/, {
        sharedGroup: GROUP,
      });
    });

    it("never accepts a directory others can write, shared group or not", async () => {
      const baseDir = makeDir(fresh(), 0o2777, { gid: GROUP });
      await assertAllRefused(baseDir, baseDir, /writable by others/, { sharedGroup: GROUP });
    });

    it("accepts a state directory another member of the group created", {
      skip: needsRoot,
    }, async () => {
      const baseDir = makeDir(fresh(), 0o2770, { gid: GROUP });
      const member = makeDir(path.join(baseDir, "s"), 0o2770, { uid: 4242, gid: GROUP });
      fs.writeFileSync(path.join(member, "state.json"), '{"by":"member"}');
      const repo = repoAt(baseDir, { sharedGroup: GROUP });
      assert.deepEqual(await repo.load("s"), { by: "member" });
      await repo.update("s", () => ({ by: "me" }));
      assert.deepEqual(await repo.load("s"), { by: "me" });
      // But not one a stranger created: another group.
      const stranger = makeDir(path.join(baseDir, "t"), 0o700, { uid: 4343, gid: 4343 });
      await assert.rejects(repo.load("t"), (error) => {
        assertUntrusted(error, stranger, /owned by uid 4343/);
        return true;
      });
    });

    it("trusts another owner's directory of the group only where strangers cannot create entries", {
      skip: needsRoot,
    }, async () => {
      // In a sticky world-writable directory anyone may have created `base` first.
      const sticky = makeDir(fresh("sticky"), 0o1777);
      const base = makeDir(path.join(sticky, "base"), 0o2770, { uid: 4242, gid: GROUP });
      await assertAllRefused(base, base, /owned by uid 4242/, { sharedGroup: GROUP }, sticky);
    });
  },
);
