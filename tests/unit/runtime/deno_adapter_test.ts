import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
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
} else {
  describe("deno adapter conformance", () => {
    it("runs only under Deno", { skip: "the Deno adapter needs the Deno runtime" }, () => {});
  });
}
