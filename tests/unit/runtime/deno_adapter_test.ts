import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { adapterConformance } from "./adapter_conformance.ts";
import { ROOT } from "../../_support/runtimes.ts";

if ("Deno" in globalThis) {
  const { createDenoAdapter } = await import("../../../src/runtime/deno/adapter.ts");
  adapterConformance("deno", createDenoAdapter());

  describe("deno adapter uid()", { skip: process.platform === "win32" && "no uid" }, () => {
    const uidWith = (...permissions: string[]) => {
      const child = spawnSync(
        Deno.execPath(),
        ["run", "--quiet", ...permissions, path.join(ROOT, "tests/_support/print_uid.ts")],
        { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
      );
      assert.equal(child.status, 0, child.stderr);
      return JSON.parse(child.stdout).uid;
    };

    it("is undefined without the sys permission for uid", () => {
      assert.equal(uidWith("--allow-read", "--allow-env"), null);
    });

    it("is the process's uid with --allow-sys=uid", () => {
      assert.equal(uidWith("--allow-read", "--allow-env", "--allow-sys=uid"), process.geteuid?.());
    });
  });

  describe("deno adapter without every permission", { skip: process.platform === "win32" }, () => {
    it("still refuses to follow a symlink where holdfast opens without following", () => {
      // Deno 2.9's node:fs ignores O_NOFOLLOW unless run with -A: the adapter checks after.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-nofollow-"));
      try {
        fs.writeFileSync(path.join(dir, "victim"), "precious");
        fs.symlinkSync(path.join(dir, "victim"), path.join(dir, "link"));
        fs.symlinkSync(path.join(dir, "victim"), path.join(dir, "res.json.lock.owner"));
        const child = spawnSync(
          Deno.execPath(),
          [
            "run",
            "--quiet",
            `--allow-read=${dir}`,
            `--allow-write=${dir}`,
            path.join(ROOT, "tests/_support/nofollow_probe.ts"),
            dir,
          ],
          { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
        );
        assert.equal(child.status, 0, child.stderr);
        const outcome = JSON.parse(child.stdout);
        assert.equal(outcome.open, "ELOOP", child.stdout);
        assert.equal(outcome.readFile, "ELOOP", child.stdout);
        assert.equal(outcome.lock, "LOCK_CREATE_FAILED", child.stdout);
        assert.equal(fs.readFileSync(path.join(dir, "victim"), "utf8"), "precious");
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
} else {
  describe("deno adapter conformance", () => {
    it("runs only under Deno", { skip: "the Deno adapter needs the Deno runtime" }, () => {});
  });
}
