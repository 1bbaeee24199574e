/** GEM handles, dumb buffers, PRIME export/import and their caches, ioctl permissions. */

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DRM_CAP_DUMB_BUFFER,
  DRM_CAP_PRIME,
  DRM_CLOEXEC,
  DRM_IOCTL_GEM_FLINK,
  DRM_PRIME_CAP_EXPORT,
  DRM_PRIME_CAP_IMPORT,
  DRM_RDWR,
} from "../../../src/include/uapi/drm.js";
import {
  F_GETFD,
  FD_CLOEXEC,
  MAP_SHARED,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from "../../../src/include/uapi/fcntl.js";
import { crc32, crc32Le } from "../../../src/lib/crc32.js";
import {
  drmGemClose,
  drmGetCap,
  drmGetVersion,
  drmModeCreateDumb,
  drmModeDestroyDumb,
  drmModeMapDumb,
  drmPrimeFdToHandle,
  drmPrimeHandleToFd,
  simgpuGemCreate,
  simgpuGemMmapOffset,
} from "../../../src/uapi/drm.js";
import { dmaBufSize, dmaHeapAlloc } from "../../../src/uapi/lib.js";
import { SimUapi } from "../../../src/uapi/sim.js";
import { boot, errno } from "./helpers.js";

test("crc32: the IEEE check value and crc32_le chaining", () => {
  const s = new TextEncoder().encode("123456789");
  assert.equal(crc32(s), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  // crc32_le has no inversions: chaining two halves equals one pass.
  const a = crc32Le(0xffffffff, s.subarray(0, 4));
  assert.equal(~crc32Le(a, s.subarray(4)) >>> 0, 0xcbf43926);
  const big = new Uint8Array(1000).map((_, i) => (i * 37) & 0xff);
  let slow = 0xffffffff;
  for (const b of big) {
    slow ^= b;
    for (let k = 0; k < 8; k++) slow = slow & 1 ? (0xedb88320 ^ (slow >>> 1)) >>> 0 : slow >>> 1;
  }
  assert.equal(crc32(big), ~slow >>> 0);
});

test("minors in probe order, VERSION and GET_CAP", () => {
  const { u } = boot();
  const card0 = u.open("/dev/dri/card0", O_RDWR);
  const r128 = u.open("/dev/dri/renderD128", O_RDWR);
  const r129 = u.open("/dev/dri/renderD129", O_RDWR);
  const card2 = u.open("/dev/dri/card2", O_RDWR);
  assert.throws(() => u.open("/dev/dri/renderD130", O_RDWR), errno("ENOENT"));
  const v = drmGetVersion(u, r128);
  assert.deepEqual(v, {
    major: 1,
    minor: 0,
    patchlevel: 0,
    name: "vgem",
    date: "20120112",
    desc: "Virtual GEM provider",
  });
  assert.equal(drmGetVersion(u, r129).name, "simgpu");
  assert.equal(drmGetVersion(u, card2).name, "simdisplay");
  assert.equal(
    drmGetCap(u, r128, DRM_CAP_PRIME),
    BigInt(DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT),
  );
  // Non-KMS drivers answer only the generic caps.
  assert.throws(() => drmGetCap(u, card0, DRM_CAP_DUMB_BUFFER), errno("EOPNOTSUPP"));
  assert.equal(drmGetCap(u, card2, DRM_CAP_DUMB_BUFFER), 1n);
  assert.throws(() => drmGetCap(u, card2, 0x7777), errno("EINVAL"));
  // An ioctl number nobody defines.
  assert.throws(() => u.ioctl(card0, 0xc0086480 + 0x1f, 0), errno("EINVAL"));
});

test("render nodes: no dumb buffers, no flink; GEM_CLOSE twice is EINVAL", () => {
  const { u } = boot();
  const render = u.open("/dev/dri/renderD128", O_RDWR);
  const card = u.open("/dev/dri/card0", O_RDWR);
  assert.throws(
    () => drmModeCreateDumb(u, render, { width: 16, height: 16, bpp: 32 }),
    errno("EACCES"),
  );
  const d = drmModeCreateDumb(u, card, { width: 16, height: 16, bpp: 32 });
  assert.equal(d.pitch, 64);
  assert.equal(d.size, 4096);
  const arg = u.alloc(8);
  arg.bytes[0] = d.handle;
  assert.throws(() => u.ioctl(render, DRM_IOCTL_GEM_FLINK, arg.addr), errno("EACCES"));
  u.ioctl(card, DRM_IOCTL_GEM_FLINK, arg.addr);
  assert.equal(arg.bytes[4], 1, "flink name 1 on the primary node");
  assert.throws(
    () => drmModeCreateDumb(u, card, { width: 0, height: 16, bpp: 32 }),
    errno("EINVAL"),
  );
  assert.throws(() => drmModeMapDumb(u, card, 99), errno("ENOENT"));
  drmGemClose(u, card, d.handle);
  assert.throws(() => drmGemClose(u, card, d.handle), errno("EINVAL"));
  assert.throws(() => drmModeDestroyDumb(u, card, d.handle), errno("EINVAL"));
  // simgpu has no dumb buffers at all.
  const gpuCard = u.open("/dev/dri/card1", O_RDWR);
  assert.throws(
    () => drmModeCreateDumb(u, gpuCard, { width: 16, height: 16, bpp: 32 }),
    errno("ENOSYS"),
  );
});

test("PRIME: bad flags, bad handle, foreign and closed fds", () => {
  const { u } = boot();
  const card = u.open("/dev/dri/card0", O_RDWR);
  const d = drmModeCreateDumb(u, card, { width: 16, height: 16, bpp: 32 });
  assert.throws(() => drmPrimeHandleToFd(u, card, d.handle, 0x40), errno("EINVAL"));
  assert.throws(() => drmPrimeHandleToFd(u, card, 77, DRM_CLOEXEC), errno("ENOENT"));
  // A DRM fd is not a dma-buf.
  assert.throws(() => drmPrimeFdToHandle(u, card, card), errno("EINVAL"));
  const fd = drmPrimeHandleToFd(u, card, d.handle, DRM_CLOEXEC | DRM_RDWR);
  assert.equal(u.fcntl(fd, F_GETFD), FD_CLOEXEC);
  assert.equal(dmaBufSize(u, fd), 4096);
  u.close(fd);
  assert.throws(() => drmPrimeFdToHandle(u, card, fd), errno("EBADF"));
});

test("PRIME caches: export twice is one dma-buf; self-import returns the same handle", () => {
  const { k, u } = boot();
  const card = u.open("/dev/dri/card0", O_RDWR);
  const d = drmModeCreateDumb(u, card, { width: 32, height: 32, bpp: 32 });
  const fd1 = drmPrimeHandleToFd(u, card, d.handle, DRM_CLOEXEC | DRM_RDWR);
  const fd2 = drmPrimeHandleToFd(u, card, d.handle, DRM_CLOEXEC | DRM_RDWR);
  assert.equal(k.dmaBuf.buffers.length, 1, "the object's dma-buf is cached");
  assert.equal(drmPrimeFdToHandle(u, card, fd1), d.handle);
  // Another file of the same device gets its own handle for the same object, without an attachment.
  const card2 = u.open("/dev/dri/card0", O_RDWR);
  const h2 = drmPrimeFdToHandle(u, card2, fd2);
  assert.equal(drmPrimeFdToHandle(u, card2, fd1), h2);
  assert.equal(k.dmaBuf.buffers[0]!.attachments.length, 0, "a self-import does not attach");
  // The handles keep the object; the fds keep the dma-buf. Drop everything: all freed.
  u.close(fd1);
  u.close(fd2);
  drmGemClose(u, card, d.handle);
  assert.equal(k.dmaBuf.buffers.length, 1, "card2's handle still caches the dma-buf");
  u.close(card2);
  assert.equal(k.dmaBuf.buffers.length, 0);
});

test("PRIME import of a heap buffer: attached once, same handle twice, released with the last reference", () => {
  const { k, u } = boot();
  const heap = u.open("/dev/dma_heap/system", O_RDWR);
  const buf = dmaHeapAlloc(u, heap, 64 * 1024);
  const gpu = u.open("/dev/dri/renderD129", O_RDWR);
  const h = drmPrimeFdToHandle(u, gpu, buf);
  assert.equal(drmPrimeFdToHandle(u, gpu, buf), h);
  const db = k.dmaBuf.buffers[0]!;
  assert.equal(db.attachments.length, 1);
  assert.equal(db.attachments[0]!.dev.name, "simgpu");
  // Re-export of an import gives back the original dma-buf.
  const again = drmPrimeHandleToFd(u, gpu, h, DRM_CLOEXEC);
  assert.equal(k.dmaBuf.buffers.length, 1);
  u.close(again);
  u.close(buf);
  assert.equal(k.dmaBuf.buffers.length, 1, "the import holds the buffer");
  drmGemClose(u, gpu, h);
  assert.equal(k.dmaBuf.buffers.length, 0);
  assert.equal(db.attachments.length, 0, "detached at free");
  assert.equal(k.dma.liveMappings, 0, "and unmapped");
});

test("GEM mmap: vgem write-combined, checked offsets, no access without a handle", () => {
  const { k, u } = boot();
  const card = u.open("/dev/dri/card0", O_RDWR);
  const d = drmModeCreateDumb(u, card, { width: 64, height: 16, bpp: 32 });
  const off = drmModeMapDumb(u, card, d.handle);
  assert.equal(off, 0x1_0000_0000, "fake offsets start at DRM_FILE_PAGE_OFFSET_START");
  const map = u.mmap(d.size, PROT_READ | PROT_WRITE, MAP_SHARED, card, off);
  map.fill(0, d.size, 0x5a);
  assert.equal(map.read(100, 1)[0], 0x5a);
  assert.throws(() => u.mmap(d.size * 2, PROT_READ, MAP_SHARED, card, off), errno("EINVAL"));
  assert.throws(() => u.mmap(4096, PROT_READ, MAP_SHARED, card, 0), errno("EINVAL"));
  const other = u.open("/dev/dri/card0", O_RDWR);
  assert.throws(() => u.mmap(4096, PROT_READ, MAP_SHARED, other, off), errno("EACCES"));
  // simgpu's own create/mmap-offset ioctls.
  const r = u.open("/dev/dri/renderD129", O_RDWR);
  const bo = simgpuGemCreate(u, r, 5000);
  assert.equal(bo.size, 8192);
  const m2 = u.mmap(
    bo.size,
    PROT_READ | PROT_WRITE,
    MAP_SHARED,
    r,
    simgpuGemMmapOffset(u, r, bo.handle),
  );
  m2.fill(0, 8192, 1);
  assert.throws(() => simgpuGemMmapOffset(u, r, 42), errno("ENOENT"));
  u.munmap(m2);
  u.munmap(map);
  assert.equal(
    k.machine.violations.count,
    0,
    k.machine.violations.list.map((v) => v.message).join("\n"),
  );
  const p2 = new SimUapi(k, "other");
  assert.throws(() => p2.open("/dev/dri/card9", O_RDWR), errno("ENOENT"));
});
