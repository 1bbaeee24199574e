/**
 * The harness-free conformance runner (./runner.ts): statuses per case, and the console
 * format the QEMU run carries back to the host.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { KernelError } from "../../src/errno.js";
import type { Uapi } from "../../src/uapi/uapi.js";
import {
  BEGIN_MARKER,
  CASE_MARKER,
  END_MARKER,
  INFO_MARKER,
  parseConformanceOutput,
  runCase,
  summarize,
} from "./runner.js";
import { type ConformanceCase, expectErrno } from "./suite.js";

const noUapi = (): Uapi => ({}) as Uapi;

test("runCase: pass, fail with expected vs got errno, unsupported with the reason", () => {
  const pass: ConformanceCase = { suite: "dma-buf", name: "p", run: () => {} };
  const fail: ConformanceCase = {
    suite: "dma-buf",
    name: "f",
    run: () =>
      expectErrno("EINVAL", () => {
        throw new KernelError("ENOTTY", "no such ioctl");
      }),
  };
  const thrown: ConformanceCase = {
    suite: "dma-buf",
    name: "t",
    run: () => {
      throw new KernelError("ENOENT", "open(/dev/udmabuf) failed");
    },
  };
  const needs: ConformanceCase = { suite: "sync", name: "n", needs: ["sw_sync"], run: () => {} };
  const opts = { capabilities: [], missing: { sw_sync: "no debugfs node" } };
  assert.equal(runCase(pass, noUapi, opts).status, "pass");
  const f = runCase(fail, noUapi, opts);
  assert.equal(f.status, "fail");
  assert.match(f.detail ?? "", /expected EINVAL, got ENOTTY/);
  assert.match(runCase(thrown, noUapi, opts).detail ?? "", /KernelError: ENOENT/);
  const u = runCase(needs, noUapi, opts);
  assert.equal(u.status, "unsupported");
  assert.equal(u.detail, "sw_sync: no debugfs node");
});

test("parseConformanceOutput: CRLF, kernel noise and a run cut short", () => {
  const r = { suite: "udmabuf", name: "test-1 → EINVAL", status: "pass", ms: 3 };
  const console = [
    "[    1.0] some kernel line",
    `${INFO_MARKER} ls /dev/dri: card0 renderD128`,
    `${BEGIN_MARKER} {"backend":"linux","capabilities":["udmabuf"]}`,
    `${CASE_MARKER} ${JSON.stringify(r)}`,
    "",
  ].join("\r\n");
  const cut = parseConformanceOutput(console);
  assert.equal(cut.complete, false);
  assert.deepEqual(cut.results, [r]);
  assert.deepEqual(cut.info, ["ls /dev/dri: card0 renderD128"]);
  assert.deepEqual(cut.header?.capabilities, ["udmabuf"]);
  const full = parseConformanceOutput(`${console}${END_MARKER} {}\r\n`);
  assert.equal(full.complete, true);
  assert.deepEqual(summarize(full.results), { pass: 1, fail: 0, unsupported: 0 });
});
