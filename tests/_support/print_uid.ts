// Prints what the Deno adapter's uid() answers, as {"uid": n | null}: run by the Deno adapter
// test with and without the sys permission for uid.
import { createDenoAdapter } from "../../src/runtime/deno/adapter.ts";

console.log(JSON.stringify({ uid: createDenoAdapter().uid() ?? null }));
