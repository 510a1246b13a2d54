import { createNodeAdapter } from "../../../src/runtime/node/adapter.ts";
import { adapterConformance } from "./adapter_conformance.ts";

// The Node adapter runs on Node and, through Deno's Node compatibility, on Deno too.
adapterConformance("node", createNodeAdapter());
