/**
 * End to end: a system-heap buffer shared by a camera (writes frames) and a display
 * (reads them) — two non-coherent devices — and the CPU, which stamps an overlay into
 * each frame between them. With the right brackets every byte arrives; drop one and
 * the bytes go wrong and the checker names the missing call.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { DMA_BIDIRECTIONAL } from "../../src/dma/direction.js";
import { dmaBufGet } from "../../src/dma-buf/dma-buf.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_RW,
  DMA_BUF_SYNC_START,
} from "../../src/include/uapi/dma-buf.js";
import { MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE } from "../../src/include/uapi/fcntl.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { dmaBufSync, dmaHeapAlloc } from "../../src/uapi/lib.js";
import { SimUapi } from "../../src/uapi/sim.js";

const SIZE = 256 * 1024;
const OVERLAY = 4096;

function frame(n: number): Uint8Array {
  const b = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i++) b[i] = (i * 7 + n * 13) & 0xff;
  return b;
}

interface Outcome {
  wrongBytes: number;
  kinds: string[];
  hints: string[];
}

function pipeline(profile: string, opts: { skipStart?: boolean; skipEnd?: boolean }): Outcome {
  const k = new Kernel({ profile });
  const cam = k.machine.addDevice("camera");
  const disp = k.machine.addDevice("display");
  const app = new SimUapi(k, "compositor");
  const heap = app.open("/dev/dma_heap/system", O_RDWR);
  const fd = dmaHeapAlloc(app, heap, SIZE);
  const map = app.mmap(SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

  // The drivers import the buffer from the fd userspace passed them.
  const buf = dmaBufGet(app.process, fd);
  const camAt = buf.attach(cam);
  const dispAt = buf.attach(disp);
  // Both drivers keep their mappings for the whole stream, as V4L2 and DRM do: from
  // here on only the CPU-access brackets keep the caches honest.
  const wsg = buf.mapAttachment(camAt, DMA_BIDIRECTIONAL);
  const rsg = buf.mapAttachment(dispAt, DMA_BIDIRECTIONAL);
  let wrong = 0;
  for (let n = 0; n < 3; n++) {
    cam.writeSegments(wsg.dmaSegments(), frame(n));
    // The CPU reads the top-left corner and stamps an overlay over it.
    if (!opts.skipStart) dmaBufSync(app, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
    const seen = map.read(0, OVERLAY);
    const expect = frame(n).subarray(0, OVERLAY);
    for (let i = 0; i < OVERLAY; i++) if (seen[i] !== expect[i]) wrong++;
    map.fill(0, OVERLAY, 0xee);
    if (!opts.skipEnd) dmaBufSync(app, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
    // Display scans it out.
    const out = disp.readSegments(rsg.dmaSegments());
    const want = frame(n);
    want.fill(0xee, 0, OVERLAY);
    for (let i = 0; i < SIZE; i++) if (out[i] !== want[i]) wrong++;
  }
  buf.unmapAttachment(camAt, wsg, DMA_BIDIRECTIONAL);
  buf.unmapAttachment(dispAt, rsg, DMA_BIDIRECTIONAL);
  buf.detach(camAt);
  buf.detach(dispAt);
  buf.put();
  app.munmap(map);
  app.close(fd);
  assert.equal(k.dmaBuf.buffers.length, 0, "the buffer is released with its last reference");
  const v = k.machine.violations.list;
  return {
    wrongBytes: wrong,
    kinds: [...new Set(v.map((x) => x.kind))].sort(),
    hints: v.map((x) => x.hint),
  };
}

for (const profile of ["arm64", "cortex-a9", "riscv64"]) {
  test(`${profile}: camera -> CPU overlay -> display, with the brackets, is exact`, () => {
    const r = pipeline(profile, {});
    assert.equal(r.wrongBytes, 0);
    assert.deepEqual(r.kinds, []);
  });
}

test("arm64: without DMA_BUF_SYNC_END the display misses the overlay and the checker names the sync", () => {
  const r = pipeline("arm64", { skipEnd: true });
  assert.ok(r.wrongBytes > 0);
  assert.ok(r.kinds.includes("stale-device-read"), r.kinds.join());
  assert.ok(
    r.hints.some((h) => /DMA_BUF_SYNC_END/.test(h)),
    r.hints.join("\n"),
  );
});

test("arm64: without DMA_BUF_SYNC_START the CPU reads an old frame and the checker says so", () => {
  const r = pipeline("arm64", { skipStart: true });
  assert.ok(r.wrongBytes > 0);
  assert.ok(r.kinds.includes("stale-cpu-read"), r.kinds.join());
});

test("x86-64: coherent, so even unbracketed access gives the right bytes", () => {
  const r = pipeline("x86-64", { skipStart: true, skipEnd: true });
  assert.equal(r.wrongBytes, 0);
});
