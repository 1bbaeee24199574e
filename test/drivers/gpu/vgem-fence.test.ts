/** vgem's fence ioctls: conflicts, errnos, the 10 s expiry, close; what other devices see. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { VGEM_FENCE_TIMEOUT_NS } from "../../../src/drivers/gpu/drm/vgem/vgem-fence.js";
import { DMA_BUF_SYNC_READ } from "../../../src/include/uapi/dma-buf.js";
import { DRM_CLOEXEC, DRM_RDWR } from "../../../src/include/uapi/drm.js";
import { O_RDWR, POLLIN, POLLOUT } from "../../../src/include/uapi/fcntl.js";
import {
  DRM_IOCTL_VGEM_FENCE_ATTACH,
  DRM_IOCTL_VGEM_FENCE_SIGNAL,
  VGEM_FENCE_WRITE,
} from "../../../src/include/uapi/vgem-drm.js";
import {
  drmModeCreateDumb,
  drmPrimeHandleToFd,
  vgemFenceAttach,
  vgemFenceSignal,
} from "../../../src/uapi/drm.js";
import { dmaBufExportSyncFile, syncFileInfo } from "../../../src/uapi/lib.js";
import { boot, errno } from "./helpers.js";

function setup() {
  const b = boot();
  const card = b.u.open("/dev/dri/card0", O_RDWR);
  const d = drmModeCreateDumb(b.u, card, { width: 32, height: 32, bpp: 32 });
  return { ...b, card, h: d.handle };
}

test("attach: flags, pad and handle errnos; writers conflict with everyone, readers with writers", () => {
  const { u, card, h } = setup();
  assert.throws(() => vgemFenceAttach(u, card, h, 2), errno("EINVAL"));
  const arg = u.alloc(16);
  new DataView(arg.bytes.buffer, arg.bytes.byteOffset).setUint32(0, h, true);
  arg.bytes[12] = 1; // pad
  assert.throws(() => u.ioctl(card, DRM_IOCTL_VGEM_FENCE_ATTACH, arg.addr), errno("EINVAL"));
  assert.throws(() => vgemFenceAttach(u, card, 99, 0), errno("ENOENT"));
  const r1 = vgemFenceAttach(u, card, h, 0);
  const r2 = vgemFenceAttach(u, card, h, 0);
  assert.deepEqual([r1, r2], [1, 2]);
  assert.throws(() => vgemFenceAttach(u, card, h, VGEM_FENCE_WRITE), errno("EBUSY"));
  vgemFenceSignal(u, card, r1);
  vgemFenceSignal(u, card, r2);
  const w = vgemFenceAttach(u, card, h, VGEM_FENCE_WRITE);
  assert.equal(w, 3, "ids are never reused");
  assert.throws(() => vgemFenceAttach(u, card, h, 0), errno("EBUSY"));
  assert.throws(() => vgemFenceAttach(u, card, h, VGEM_FENCE_WRITE), errno("EBUSY"));
  vgemFenceSignal(u, card, w);
  assert.ok(vgemFenceAttach(u, card, h, VGEM_FENCE_WRITE) > 0);
});

test("signal: twice or unknown is ENOENT, flags EINVAL, an expired fence ETIMEDOUT", () => {
  const { u, k, card, h } = setup();
  const id = vgemFenceAttach(u, card, h, VGEM_FENCE_WRITE);
  const arg = u.alloc(8);
  const v = new DataView(arg.bytes.buffer, arg.bytes.byteOffset);
  v.setUint32(0, id, true);
  v.setUint32(4, 1, true);
  assert.throws(() => u.ioctl(card, DRM_IOCTL_VGEM_FENCE_SIGNAL, arg.addr), errno("EINVAL"));
  vgemFenceSignal(u, card, id);
  assert.throws(() => vgemFenceSignal(u, card, id), errno("ENOENT"));
  assert.throws(() => vgemFenceSignal(u, card, 1234), errno("ENOENT"));
  const late = vgemFenceAttach(u, card, h, VGEM_FENCE_WRITE);
  k.machine.clock.advance(VGEM_FENCE_TIMEOUT_NS - 1);
  assert.throws(
    () => vgemFenceAttach(u, card, h, 0),
    errno("EBUSY"),
    "still pending just before 10 s",
  );
  k.machine.clock.advance(1);
  assert.ok(vgemFenceAttach(u, card, h, 0) > 0, "expired: no conflict any more");
  assert.throws(() => vgemFenceSignal(u, card, late), errno("ETIMEDOUT"));
  assert.throws(() => vgemFenceSignal(u, card, late), errno("ENOENT"));
});

test("the fence is the dma-buf's: poll, EXPORT_SYNC_FILE, and close signals what is left", () => {
  const { u, k, card, h } = setup();
  const fd = drmPrimeHandleToFd(u, card, h, DRM_CLOEXEC | DRM_RDWR);
  assert.deepEqual(u.poll([{ fd, events: POLLIN | POLLOUT }], 0), [POLLIN | POLLOUT]);
  const id = vgemFenceAttach(u, card, h, VGEM_FENCE_WRITE);
  assert.deepEqual(u.poll([{ fd, events: POLLIN | POLLOUT }], 0), [0]);
  const sync = dmaBufExportSyncFile(u, fd, DMA_BUF_SYNC_READ);
  const info = syncFileInfo(u, sync);
  assert.equal(info.status, 0);
  assert.equal(info.fences[0]!.driverName, "vgem");
  assert.equal(info.fences[0]!.objName, "unbound");
  vgemFenceSignal(u, card, id);
  assert.equal(syncFileInfo(u, sync).status, 1);
  // A fence still held when the file closes is signalled by vgem_fence_close.
  const other = u.open("/dev/dri/card0", O_RDWR);
  const h2 = drmModeCreateDumb(u, other, { width: 8, height: 8, bpp: 32 }).handle;
  const fd2 = drmPrimeHandleToFd(u, other, h2, DRM_CLOEXEC);
  vgemFenceAttach(u, other, h2, VGEM_FENCE_WRITE);
  assert.deepEqual(u.poll([{ fd: fd2, events: POLLIN }], 0), [0]);
  u.close(other);
  assert.deepEqual(u.poll([{ fd: fd2, events: POLLIN }], 0), [POLLIN]);
  assert.equal(k.machine.clock.now < VGEM_FENCE_TIMEOUT_NS, true);
});
