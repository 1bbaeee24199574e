import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_RW,
  DMA_BUF_SYNC_START,
} from "../src/include/uapi/dma-buf.js";
import { MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE } from "../src/include/uapi/fcntl.js";
import { Kernel } from "../src/kernel/kernel.js";
import { dmaBufSize, dmaBufSync, dmaHeapAlloc } from "../src/uapi/lib.js";
import { SimUapi } from "../src/uapi/sim.js";

test("system heap: alloc, mmap, sync, write, read back", () => {
  const k = new Kernel({ profile: "arm64" });
  const u = new SimUapi(k);
  const heap = u.open("/dev/dma_heap/system", O_RDWR);
  const fd = dmaHeapAlloc(u, heap, 1 << 20);
  assert.equal(dmaBufSize(u, fd), 1 << 20);
  const map = u.mmap(1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  dmaBufSync(u, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
  map.fill(0, 1 << 19, 1);
  dmaBufSync(u, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
  assert.equal(map.read(100, 1)[0], 1);
  assert.match(k.bufinfo(), /system/);
  u.munmap(map);
  u.close(fd);
  assert.equal(k.dmaBuf.buffers.length, 0);
});

test("a mapping's read into the program's buffer is the read into a new one", () => {
  const k = new Kernel({ profile: "arm64" });
  const u = new SimUapi(k);
  const heap = u.open("/dev/dma_heap/system", O_RDWR);
  const fd = dmaHeapAlloc(u, heap, 1 << 16);
  const map = u.mmap(1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  dmaBufSync(u, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
  map.write(
    4000,
    Uint8Array.from({ length: 300 }, (_, i) => (i * 7 + 3) & 0xff),
  );
  const into = new Uint8Array(512).fill(0xee);
  const got = map.read(3990, 320, into);
  assert.deepEqual(got, map.read(3990, 320));
  assert.equal(got.buffer, into.buffer);
  assert.equal(into[320], 0xee, "nothing past the read");
  assert.throws(() => map.read(0, 600, into), RangeError);
  dmaBufSync(u, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
  u.munmap(map);
  u.close(fd);
});
