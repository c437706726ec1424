// Post-processes src/onnx/generated/onnx.js after pbjs (run by `npm run gen:onnx`).
//
// protobufjs-cli 2.7.1's static target leaves protobufjs 7.6's `new this.ctor()` in every generated
// `decode`, but static classes have no `ctor` property ("this.ctor is not a constructor"). Replace it
// with the message class the function belongs to (`X.decode = function X$decode(...)`).
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("./generated/onnx.js", import.meta.url);
const src = readFileSync(file, "utf8");
let current = null;
let replaced = 0;
const out = src
  .split("\n")
  .map((line) => {
    const m = /(\w+)\.decode = function \w+\$decode\(/.exec(line);
    if (m) current = m[1];
    if (line.includes("new this.ctor()")) {
      if (!current) throw new Error("`new this.ctor()` outside a decode function");
      replaced++;
      return line.replace("new this.ctor()", `new ${current}()`);
    }
    return line;
  })
  .join("\n");
writeFileSync(file, out);
console.log(`postprocess-generated: fixed ${replaced} decode constructors`);
