import assert from "node:assert/strict";
import { test } from "node:test";
import { Machine } from "../src/machine/machine.js";

test("stale read without invalidate, fresh after", () => {
  const m = new Machine({ profile: "arm64" });
  const dev = m.addDevice("cam0");
  const pfn = m.pages.alloc(0);
  const phys = pfn * 4096;
  const old = m.cpu.readPhys(phys, 64); // caches the line
  assert.equal(old[0], 0);
  dev.addWindow({ dmaAddr: phys, len: 4096, direction: "from-device", label: "t" });
  dev.write(phys, new Uint8Array(64).fill(0xab));
  const stale = m.cpu.readPhys(phys, 64);
  assert.equal(stale[0], 0, "stale line returns old bytes");
  assert.equal(m.violations.ofKind("stale-cpu-read").length, 1);
  m.maintain("invalidate", [{ phys, len: 4096 }]);
  assert.equal(m.cpu.readPhys(phys, 64)[0], 0xab);
});
