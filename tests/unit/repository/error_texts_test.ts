// Repository errors say what to check where the state lives: a file backend's Tips name files,
// directories and jq; a database backend's (store: "database") name the server, the role's
// privileges and psql, never a file's permissions.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  StateCorruptedError,
  StateDeleteError,
  StateDeserializeError,
  StateLockLostError,
  StateReadError,
  StateWriteError,
} from "../../../src/repository/errors.ts";

const cause = new Error("connection terminated");
const file = { stateName: "app", path: "/var/lib/app/app/state.json", cause };
const row = {
  stateName: "app",
  path: "postgres:holdfast_state/holdfast/app",
  cause,
  store: "database" as const,
};

const make = (where: typeof file | typeof row) => [
  new StateReadError(where),
  new StateWriteError(where),
  new StateDeleteError(where),
  new StateCorruptedError({ ...where, reason: "unexpected end" }),
  new StateDeserializeError(where),
  new StateLockLostError(where),
];

describe("repository error texts by store", () => {
  it("a database's errors keep their codes and paths, and their Tips and help name no file or directory", () => {
    const files = make(file);
    const rows = make(row);
    for (const [i, error] of rows.entries()) {
      assert.equal(error.code, files[i].code);
      assert.equal(error.path, row.path);
      assert.match(error.message, /postgres:holdfast_state\/holdfast\/app/);
      assert.match(error.message, /Tip: /);
      const text = `${error.message}\n${error.help()}`;
      assert.doesNotMatch(
        text,
        /\bjq\b|directory|permissions of the file|mv '/,
        `${error.code}: ${text}`,
      );
    }
    assert.match(rows[0].message, /server/);
    assert.match(rows[3].message, /psql/);
  });

  it("a file backend's errors are as before", () => {
    const [read, , , corrupted] = make(file);
    assert.match(read.message, /permissions of the file and its directory/);
    assert.match(corrupted.message, /jq \./);
  });
});
