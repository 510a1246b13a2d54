/**
 * Section 8 of the benchmark: start-up, what a shell script pays at every `holdfast run lock --
 * cmd`. Whole processes are timed from spawn to exit, side by side in one run: the bare runtime
 * (the floor no program of it can beat), loading holdfast (the npm build on Node, the source on
 * Deno, which runs TypeScript as it is), loading the peers, and the CLI's `status` and `run`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { percentile } from "../../scripts/lib/stats.mjs";
import { nodeBinary } from "../../scripts/lib/runtimes.mjs";
import { CURRENT_RUNTIME } from "../../testing.ts";
import { type BenchContext, ROOT, type SectionResult } from "../harness.ts";
import type { Chart } from "../chart.ts";
import { dur, ratio, type Section, type Target } from "../report.ts";

interface Command {
  /** The row's label. */
  readonly label: string;
  readonly argv: readonly string[];
  readonly kind: "holdfast" | "peer" | "floor";
}

const NPM = path.join(ROOT, "npm");
const BUILT_CLI = path.join(NPM, "src", "cli", "cli.js");

/** The npm build this section measures on Node: built now, from this checkout. */
function ensureBuilt(ctx: BenchContext): string | undefined {
  ctx.progress("startup: building npm/ (build_npm.ts --no-test --no-smoke)");
  const built = spawnSync(
    nodeBinary(24, ROOT),
    ["--no-warnings", path.join(ROOT, "build_npm.ts"), "--no-test", "--no-smoke"],
    { cwd: ROOT, encoding: "utf8" },
  );
  if (built.status !== 0) return `the npm build failed: ${built.stderr.slice(-400)}`;
  return undefined;
}

function commands(dir: string, resource: string): Command[] {
  const exe = process.execPath;
  if (CURRENT_RUNTIME === "deno") {
    const empty = path.join(dir, "empty.js");
    fs.writeFileSync(empty, "");
    const importer = path.join(dir, "import_holdfast.ts");
    fs.writeFileSync(importer, `import ${JSON.stringify(path.join(ROOT, "mod.ts"))};\n`);
    const cli = path.join(ROOT, "src", "cli", "cli.ts");
    return [
      { label: "bare: deno run (an empty script)", argv: [exe, "run", "-A", empty], kind: "floor" },
      {
        label: "import holdfast (mod.ts)",
        argv: [exe, "run", "-A", importer],
        kind: "holdfast",
      },
      {
        label: "holdfast status (a free lock)",
        argv: [exe, "run", "-A", cli, "status", resource],
        kind: "holdfast",
      },
      {
        label: "holdfast run -- true",
        argv: [exe, "run", "-A", cli, "run", resource, "--", "true"],
        kind: "holdfast",
      },
    ];
  }
  const requireOf = (name: string) =>
    `require(${JSON.stringify(path.join(ROOT, "node_modules", name))})`;
  return [
    { label: "bare: node -e 1", argv: [exe, "-e", "1"], kind: "floor" },
    {
      label: "import holdfast (npm build)",
      argv: [exe, "-e", `import(${JSON.stringify(path.join(NPM, "mod.js"))})`],
      kind: "holdfast",
    },
    {
      label: "require holdfast (npm build)",
      argv: [exe, "-e", `require(${JSON.stringify(path.join(NPM, "mod.cjs"))})`],
      kind: "holdfast",
    },
    {
      label: "import holdfast (TypeScript source)",
      argv: [exe, "--no-warnings", "-e", `import(${JSON.stringify(path.join(ROOT, "mod.ts"))})`],
      kind: "holdfast",
    },
    {
      label: "require proper-lockfile",
      argv: [exe, "-e", requireOf("proper-lockfile")],
      kind: "peer",
    },
    { label: "require lockfile", argv: [exe, "-e", requireOf("lockfile")], kind: "peer" },
    {
      label: "holdfast status (a free lock)",
      argv: [exe, BUILT_CLI, "status", resource],
      kind: "holdfast",
    },
    {
      label: "holdfast run -- true",
      argv: [exe, BUILT_CLI, "run", resource, "--", "true"],
      kind: "holdfast",
    },
  ];
}

/** Wall time of one run of `argv`, spawn to exit, in ms; throws if it fails. */
function timeOnce(argv: readonly string[], cwd: string): number {
  const started = performance.now();
  const result = spawnSync(argv[0], argv.slice(1), { cwd, stdio: ["ignore", "ignore", "pipe"] });
  const ms = performance.now() - started;
  if (result.status !== 0) {
    throw new Error(`${argv.join(" ")} exited ${result.status}: ${String(result.stderr)}`);
  }
  return ms;
}

/**
 * Times each command `--quick` ? 8 : 40 times, round-robin (so that a slow patch of the
 * machine falls on every command alike) after two warm-up runs each (Deno's first run of a
 * script compiles it into its cache). Targets: on Node, importing the npm build within 25 ms
 * of `node -e 1`; on both runtimes, `holdfast status` and `holdfast run -- true` within 2x of
 * the bare runtime.
 */
export function startup(ctx: BenchContext): Promise<SectionResult> {
  const dir = ctx.freshDir("startup");
  const resource = path.join(dir, "deploy.json");
  const failure = CURRENT_RUNTIME === "deno" ? undefined : ensureBuilt(ctx);
  if (failure) throw new Error(`startup: ${failure}`);
  const list = commands(dir, resource);
  const rounds = ctx.quick ? 8 : 40;
  const times = list.map(() => [] as number[]);
  for (let round = -2; round < rounds; round++) {
    ctx.progress(`startup: round ${round + 1} of ${rounds}`);
    list.forEach((command, i) => {
      const ms = timeOnce(command.argv, dir);
      if (round >= 0) times[i].push(ms);
    });
  }
  for (const t of times) t.sort((a, b) => a - b);
  const p50 = times.map((t) => percentile(t, 50));
  const bare = p50[0];
  const rows = list.map((command, i) => [
    command.label,
    dur(p50[i]),
    dur(percentile(times[i], 90)),
    i === 0 ? "-" : `+${dur(p50[i] - bare)}`,
    i === 0 ? "-" : ratio(p50[i] / bare),
  ]);
  const section: Section = {
    title: "8. Start-up: one process, spawn to exit",
    text: [],
    tables: [{
      headers: ["command", "p50", "p90", "over bare", "of bare"],
      align: ["l", "r", "r", "r", "r"],
      rows,
    }],
    notes: [
      `Each command run ${rounds} times, round-robin, after 2 warm-up runs each, timed from ` +
      "spawn to exit by this process. " +
      (CURRENT_RUNTIME === "deno"
        ? "Deno runs the TypeScript source (`deno run -A`, the checkout's deno.json in scope)."
        : "Node runs the npm build in npm/ (bundled: build_npm.ts), as `npx holdfast` would; " +
          "the TypeScript source row is Node's type stripping of the checkout."),
      "`holdfast status` reports a free lock; `holdfast run` takes it, runs `true`, releases.",
    ],
  };
  const at = (label: string) => p50[list.findIndex((c) => c.label.startsWith(label))];
  const targets: Target[] = [];
  if (CURRENT_RUNTIME !== "deno") {
    const imported = at("import holdfast (npm build)");
    targets.push({
      target: "start-up: import of the npm build within 25 ms of `node -e 1` (p50)",
      measured: `+${dur(imported - bare)} (${dur(imported)} vs ${dur(bare)})`,
      met: imported - bare <= 25,
    });
  }
  for (const label of ["holdfast status", "holdfast run -- true"]) {
    const ms = at(label);
    targets.push({
      target: `start-up: \`${label}\` within 2x of the bare runtime (p50)`,
      measured: `${ratio(ms / bare)} (${dur(ms)} vs ${dur(bare)})`,
      met: ms <= 2 * bare,
    });
  }
  const charts: Chart[] = [{
    name: "startup",
    title: "Start-up: spawn to exit",
    subtitle: "p50 wall time, ms (shorter is better)",
    format: (v) => dur(v),
    bars: list.map((command, i) => ({ label: command.label, value: p50[i], kind: command.kind })),
  }];
  return Promise.resolve({ section, targets, charts });
}
