import { describe, it } from "node:test";
import { adapterConformance } from "./adapter_conformance.ts";

if ("Deno" in globalThis) {
  const { createDenoAdapter } = await import("../../../src/runtime/deno/adapter.ts");
  adapterConformance("deno", createDenoAdapter());
} else {
  describe("deno adapter conformance", () => {
    it("runs only under Deno", { skip: "the Deno adapter needs the Deno runtime" }, () => {});
  });
}
