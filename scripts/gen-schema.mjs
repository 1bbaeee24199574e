#!/usr/bin/env node
// Regenerates schema/scenario.schema.json from the zod schema in src/scenarios/schema.ts
// (the same JSON `dmabuf schema` prints, formatted by Biome). Run after `npm run build`:
//   node scripts/gen-schema.mjs [DIST_DIR]
// A test (test/scenarios/schema-file.test.ts) fails when the committed file is stale.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const root = resolve(import.meta.dirname, "..");
const dist = resolve(root, process.argv[2] ?? "dist");
const mod = await import(pathToFileURL(resolve(dist, "src/scenarios/schema.js")).href);
const out = resolve(root, "schema/scenario.schema.json");
writeFileSync(out, mod.scenarioJsonSchemaText());
// Formatted as the rest of the tree is, so `biome check .` stays clean.
execFileSync("npx", ["biome", "format", "--write", out], { cwd: root, stdio: "inherit" });
console.log(`wrote ${out}`);
