// The Lock contract's conformance suite, run against both mechanisms of the file backend.
import { after, before } from "node:test";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { FileLock } from "../../../mod.ts";
import { lockConformance } from "../../../testing/lock_conformance.ts";

let dir = "";
let counter = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-conf-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const mechanism of ["kernel", "pidfile"] as const) {
  lockConformance(`FileLock (${mechanism})`, () => ({
    backend: FileLock,
    resource: () => path.join(dir, `${mechanism}-${++counter}.json`),
    options: { mechanism },
  }));
}
