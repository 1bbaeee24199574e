/**
 * The package as a user gets it: `npm pack`, the tarball unpacked into a fresh project's
 * node_modules, and the worked example of docs/custom-device.md — a device of the user's
 * own, written in TypeScript against `import ... from "dmabuf"` — compiled and run there.
 * Deep imports must be refused by package.json "exports", so everything the example
 * needs has to come from the package root.
 *
 * The tarball's runtime dependencies are linked from this checkout's node_modules (the
 * versions package-lock.json pins) instead of fetched: the test stays offline and fast,
 * while the package itself is exactly what `npm pack` produced.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

const ROOT = process.cwd();
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
let dir = "";
let project = "";

/** The first ```ts block of a doc: the worked example. */
function docExample(doc: string): string {
  const m = /```ts\n([\s\S]*?)```/.exec(readFileSync(join(ROOT, "docs", doc), "utf8"));
  assert.ok(m, `${doc} has a ts example`);
  return m[1]!;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "dmabuf-pack-"));
  const out = execFileSync(
    NPM,
    ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir],
    {
      cwd: ROOT,
      encoding: "utf8",
    },
  );
  const tarball = join(dir, out.trim().split("\n").at(-1)!);
  project = join(dir, "project");
  const modules = join(project, "node_modules");
  mkdirSync(modules, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", dir]);
  renameSync(join(dir, "package"), join(modules, "dmabuf"));
  const pkg = JSON.parse(readFileSync(join(modules, "dmabuf", "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  for (const dep of Object.keys(pkg.dependencies)) {
    const at = join(modules, ...dep.split("/"));
    mkdirSync(join(at, ".."), { recursive: true });
    symlinkSync(join(ROOT, "node_modules", ...dep.split("/")), at, "dir");
  }
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "my-pipeline", private: true, type: "module" }),
  );
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        skipLibCheck: true,
        types: ["node"],
        typeRoots: [join(ROOT, "node_modules", "@types")],
      },
    }),
  );
});

after(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

function node(args: string[]): { code: number; out: string } {
  try {
    return {
      code: 0,
      out: execFileSync(process.execPath, args, { cwd: project, encoding: "utf8" }),
    };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: `${err.stdout}${err.stderr}` };
  }
}

test("docs/custom-device.md's device compiles and runs against the installed package", () => {
  writeFileSync(join(project, "checksum-engine.ts"), docExample("custom-device.md"));
  execFileSync(
    process.execPath,
    [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"],
    { cwd: project, encoding: "utf8" },
  );
  const r = node(["checksum-engine.js"]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /with DMA_BUF_IOCTL_SYNC: true: CRC correct\n/);
  assert.match(r.out, /with DMA_BUF_IOCTL_SYNC: false: CRC WRONG\n/);
  assert.match(r.out, /stale-device-read by crc-engine/);
});

test("the package root exports the DRM/V4L2 constants, drivers and uAPI calls; deep imports are refused", () => {
  const probe = `
    const m = await import("dmabuf");
    const want = ["DRM_IOCTL_MODE_ADDFB2", "DRM_FORMAT_XRGB8888", "VIDIOC_QBUF", "V4L2_PIX_FMT_YUYV",
      "simgpuProbe", "vividProbe", "simdisplayProbe", "vgemProbe", "Kernel", "SimUapi", "uapi", "drm", "v4l2",
      "runPipeline", "sharingNs", "wholeCacheCrossover", "runSweep"];
    const missing = want.filter((n) => !(n in m));
    if (missing.length) { console.log("missing: " + missing.join(", ")); process.exit(1); }
    try { await import("dmabuf/dist/src/machine/cache.js"); console.log("deep import allowed"); process.exit(1); }
    catch (e) { console.log(e.code); }
  `;
  const r = node(["--input-type=module", "-e", probe]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
});

test("the installed dmabuf command finds its bundled scenarios by the names the docs use", () => {
  const r = node([
    join("node_modules", "dmabuf", "dist", "src", "cli", "main.js"),
    "list",
    "scenarios",
  ]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /camera-gpu-display/);
  assert.match(r.out, /my-soc/);
});
