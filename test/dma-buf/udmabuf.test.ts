/**
 * udmabuf (drivers/dma-buf/udmabuf.c) internals the uAPI cannot show: the scatterlist an
 * importer maps. Since 6.11 get_sg_table() builds it with sg_alloc_table() and one
 * sg_set_folio(..., PAGE_SIZE, ...) per page, so physically contiguous memfd pages are not
 * merged (before, sg_alloc_table_from_pages() merged them).
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { DMA_BIDIRECTIONAL } from "../../src/dma/direction.js";
import { dmaBufGet } from "../../src/dma-buf/dma-buf.js";
import { KernelError } from "../../src/errno.js";
import {
  F_ADD_SEALS,
  F_SEAL_SHRINK,
  MFD_ALLOW_SEALING,
  O_RDWR,
} from "../../src/include/uapi/fcntl.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { udmabufCreate } from "../../src/uapi/lib.js";
import { SimUapi } from "../../src/uapi/sim.js";

test("udmabuf get_sg_table: one PAGE_SIZE entry per page, contiguous pages not merged", () => {
  const k = new Kernel({ profile: "arm64" });
  const u = new SimUapi(k, "app");
  const pages = 64;
  const memfd = u.memfdCreate("sg", MFD_ALLOW_SEALING);
  u.ftruncate(memfd, pages * PAGE_SIZE);
  u.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK);
  const dev = u.open("/dev/udmabuf", O_RDWR);
  const fd = udmabufCreate(u, dev, memfd, 0, pages * PAGE_SIZE);
  const buf = dmaBufGet(u.process, fd);
  const a = buf.attach(k.machine.addDevice("importer", { dmaBits: 64 }));
  const sgt = buf.mapAttachment(a, DMA_BIDIRECTIONAL);
  assert.equal(sgt.origNents, pages);
  assert.ok(sgt.sgl.every((e) => e.offset === 0 && e.length === PAGE_SIZE));
  const phys = sgt.physRanges().map((r) => r.phys);
  const contiguous = phys.filter((p, i) => i > 0 && p === phys[i - 1]! + PAGE_SIZE).length;
  assert.ok(contiguous > 0, "a fresh machine gives the memfd some contiguous pages");
  buf.unmapAttachment(a, sgt, DMA_BIDIRECTIONAL);
  buf.detach(a);
  buf.put();
});

test("UDMABUF_CREATE on a full fd table: EMFILE, and the buffer it exported is released (pins back)", () => {
  const k = new Kernel({ profile: "arm64" });
  const u = new SimUapi(k, "app");
  const memfd = u.memfdCreate("full", MFD_ALLOW_SEALING);
  u.ftruncate(memfd, 4 * PAGE_SIZE);
  u.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK);
  const dev = u.open("/dev/udmabuf", O_RDWR);
  const pins = (u.process.files.lookup(memfd).privateData as { pins: number }).pins;
  const dups: number[] = [];
  for (;;) {
    try {
      dups.push(u.dup(dev));
    } catch (e) {
      assert.ok(e instanceof KernelError && e.code === "EMFILE");
      break;
    }
  }
  assert.throws(
    () => udmabufCreate(u, dev, memfd, 0, 4 * PAGE_SIZE),
    (e) => e instanceof KernelError && e.code === "EMFILE",
  );
  assert.equal(k.dmaBuf.buffers.length, 0, "no dma-buf left behind");
  assert.equal((u.process.files.lookup(memfd).privateData as { pins: number }).pins, pins);
  u.close(dups.pop()!);
  const fd = udmabufCreate(u, dev, memfd, 0, 4 * PAGE_SIZE);
  assert.equal(k.dmaBuf.buffers.length, 1);
  u.close(fd);
  assert.equal(k.dmaBuf.buffers.length, 0);
  assert.equal((u.process.files.lookup(memfd).privateData as { pins: number }).pins, pins);
});
