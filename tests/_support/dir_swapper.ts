// A hostile process for the mkdir race test: for `ms` milliseconds it removes the directory at
// `path` whenever one appears and puts a symlink to `target` in its place, as an attacker who
// can write the parent would between a mkdir and a chmod by path. Prints "ready" when it
// starts, then "swaps <n>" when it is done.
import * as fs from "node:fs";
import process from "node:process";

const [at, target, ms] = process.argv.slice(2);
const end = Date.now() + Number(ms);
let swaps = 0;
process.stdout.write("ready\n");
while (Date.now() < end) {
  try {
    fs.rmdirSync(at);
    fs.symlinkSync(target, at);
    swaps++;
  } catch { /* nothing to swap yet, or the link is still there */ }
}
process.stdout.write(`swaps ${swaps}\n`);
