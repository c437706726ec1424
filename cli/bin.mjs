#!/usr/bin/env node
// `bin` entry of the package: runs the TypeScript CLI through tsx.
import { register } from "tsx/esm/api";

register();
await import("./index.ts");
