// chooseMechanism, filesystemOf and fallbackReason: which mechanism a lock path gets.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runtime } from "../../../src/runtime/select/current.ts";
import type { FsStats, RuntimeAdapter } from "../../../src/runtime/types.ts";
import {
  AutoRefused,
  checkMechanism,
  chooseMechanism,
  fallbackReason,
} from "../../../src/lock/file/choose_mechanism.ts";

let n = 0;
/** An adapter whose filesystem, platform, environment and kernel lock the test sets. */
function on(
  stats: FsStats | Error,
  more: Partial<RuntimeAdapter> = {},
  env: Record<string, string> = {},
) {
  return {
    ...runtime,
    statfs: () => {
      if (stats instanceof Error) throw stats;
      return stats;
    },
    env: (name: string) => env[name],
    ...more,
  } as RuntimeAdapter;
}
const dir = () => `/holdfast-test/dir-${++n}`;
const quietly = <T>(fn: () => T): { value: T; warnings: string[] } => {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...a: unknown[]) => warnings.push(a.join(" "));
  try {
    return { value: fn(), warnings };
  } finally {
    console.warn = original;
  }
};

describe("chooseMechanism", () => {
  it("auto: kernel on a local filesystem, silently", () => {
    const { value, warnings } = quietly(() => chooseMechanism(on({ type: 0xef53 }), "auto", dir()));
    assert.equal(value.mechanism, "kernel");
    assert.equal(value.fallback, undefined);
    assert.deepEqual(warnings, []);
  });

  it("auto: pidfile on a network filesystem, warning once per directory", () => {
    const d = dir();
    const rt = on({ type: 0x6969 });
    const { value, warnings } = quietly(
      () => [chooseMechanism(rt, "auto", d), chooseMechanism(rt, "auto", d)],
    );
    assert.equal(value[0].mechanism, "pidfile");
    assert.equal(value[0].fallback, "network_filesystem");
    assert.equal(warnings.length, 1);
    assert.match(fallbackReason(rt, "auto", value[0], d) ?? "", /network filesystem/);
  });

  it("auto: pidfile where the filesystem cannot be told, and says why", () => {
    const { value, warnings } = quietly(() =>
      chooseMechanism(on(new Error("Requires sys access")), "auto", dir())
    );
    assert.equal(value.mechanism, "pidfile");
    assert.equal(value.fallback, "unknown_filesystem");
    assert.match(
      warnings[0],
      /cannot tell whether .* is on a local filesystem.*Requires sys access/,
    );
  });

  it("auto: pidfile without a kernel lock; refused on Windows", () => {
    const noKernel = on({ type: 0xef53 }, {
      kernelLock: { kind: "unsupported", tryLock: () => undefined },
    });
    assert.equal(chooseMechanism(noKernel, "auto", dir()).fallback, "no_kernel_lock");
    assert.throws(
      () => chooseMechanism(on({ type: 0 }, { platform: "windows" }), "auto", dir()),
      AutoRefused,
    );
    assert.equal(
      chooseMechanism(on({ type: 0 }, { platform: "windows" }), "kernel", dir()).mechanism,
      "kernel",
    );
  });

  it("HOLDFAST_LOCK_MECHANISM overrides auto, an explicit option overrides it, a bad value is an error", () => {
    const rt = on({ type: 0xef53 }, {}, { HOLDFAST_LOCK_MECHANISM: "pidfile" });
    const viaEnv = chooseMechanism(rt, "auto", dir());
    assert.equal(viaEnv.mechanism, "pidfile");
    assert.match(
      fallbackReason(rt, "auto", viaEnv, dir()) ?? "",
      /HOLDFAST_LOCK_MECHANISM=pidfile/,
    );
    assert.equal(chooseMechanism(rt, "kernel", dir()).mechanism, "kernel");
    assert.throws(
      () =>
        chooseMechanism(
          on({ type: 0xef53 }, {}, { HOLDFAST_LOCK_MECHANISM: "bogus" }),
          "auto",
          dir(),
        ),
      { code: "INVALID_ARGUMENT" },
    );
  });

  it("forcing kernel on a network filesystem warns loudly once, and never suggests it", () => {
    const d = dir();
    const { warnings } = quietly(() => {
      chooseMechanism(on({ type: 0x65735546, typeName: "fuse.sshfs" }), "kernel", d);
      chooseMechanism(on({ type: 0x65735546, typeName: "fuse.sshfs" }), "kernel", d);
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /WARNING.*fuse\.sshfs/);
    assert.doesNotMatch(warnings[0], /HOLDFAST_LOCK_MECHANISM=kernel to/);
  });

  it("checkMechanism accepts the three names and rejects anything else", () => {
    for (const m of ["auto", "kernel", "pidfile"]) assert.equal(checkMechanism(m, "x"), m);
    for (const m of ["", "flock", 1, undefined]) {
      assert.throws(() => checkMechanism(m, "option 'mechanism'"), { code: "INVALID_ARGUMENT" });
    }
  });
});
