/**
 * The DRM core on vgem (drivers/gpu/drm/vgem), case by case against Linux 6.12: ioctl
 * dispatch by type and number (drm_ioctl.c drm_ioctl), DRM_IOCTL_GET_CAP (drm_getcap),
 * dumb buffers as the shmem helper sizes them (drm_gem_shmem_helper.c
 * drm_gem_shmem_dumb_create), the fake mmap offsets (drm_vma_manager.c
 * drm_vma_offset_add) and private mappings (drm_gem_shmem_mmap).
 */

import assert from "node:assert/strict";
import { DMA_BUF_IOCTL_SYNC, SIZEOF_DMA_BUF_SYNC } from "../../src/include/uapi/dma-buf.js";
import {
  DRM_CAP_DUMB_BUFFER,
  DRM_CAP_PRIME,
  DRM_CAP_SYNCOBJ,
  DRM_CAP_SYNCOBJ_TIMELINE,
  DRM_CAP_TIMESTAMP_MONOTONIC,
  DRM_CLOEXEC,
  DRM_COMMAND_BASE,
  DRM_IO,
  DRM_PRIME_CAP_EXPORT,
  DRM_PRIME_CAP_IMPORT,
  DRM_RDWR,
} from "../../src/include/uapi/drm.js";
import { MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from "../../src/include/uapi/fcntl.js";
import { VIDIOC_QUERYCAP } from "../../src/include/uapi/videodev2.js";
import {
  drmGemClose,
  drmGetCap,
  drmModeCreateDumb,
  drmModeMapDumb,
  drmPrimeHandleToFd,
} from "../../src/uapi/drm.js";
import { withUserStruct } from "../../src/uapi/lib.js";
import type { Uapi } from "../../src/uapi/uapi.js";
import { expectErrno, type Fds, openVgem, scoped } from "./case-helpers.js";
// Types only: suite.ts imports this module, so a value import back would be a cycle.
import type { ConformanceCase } from "./suite.js";

const PAGE = 4096;
/** DRM_FILE_PAGE_OFFSET_START on 64-bit, in bytes: ((0xFFFFFFFF >> PAGE_SHIFT) + 1) pages. */
const FIRST_OFFSET = 0x1_0000_0000;

/** open_vgem(), held by the case. */
function vgem(u: Uapi, fds: Fds): number {
  const fd = openVgem(u);
  assert.ok(fd >= 0, "no vgem device at /dev/dri/card*");
  return fds.add(fd);
}

export const drmCases: ConformanceCase[] = [
  {
    suite: "drm",
    name: "drm_ioctl: an ioctl whose type is not 'd' → ENOTTY (DMA_BUF_IOCTL_SYNC, VIDIOC_QUERYCAP); an unknown core number or a driver number past num_ioctls → EINVAL",
    needs: ["vgem"],
    run: scoped((u, fds) => {
      const fd = vgem(u, fds);
      withUserStruct(u, SIZEOF_DMA_BUF_SYNC, (_s, addr) => {
        expectErrno("ENOTTY", () => u.ioctl(fd, DMA_BUF_IOCTL_SYNC, addr), "DMA_BUF_IOCTL_SYNC");
      });
      withUserStruct(u, 104, (_s, addr) => {
        expectErrno("ENOTTY", () => u.ioctl(fd, VIDIOC_QUERYCAP, addr), "VIDIOC_QUERYCAP");
      });
      expectErrno("EINVAL", () => u.ioctl(fd, DRM_IO(0xff), 0), "core nr 0xff");
      expectErrno(
        "EINVAL",
        () => u.ioctl(fd, DRM_IO(DRM_COMMAND_BASE + 0x20), 0),
        "driver nr 0x20",
      );
    }),
  },
  {
    suite: "drm",
    name: "DRM_IOCTL_GET_CAP on vgem (no KMS): PRIME import|export, TIMESTAMP_MONOTONIC 1, SYNCOBJ and SYNCOBJ_TIMELINE 0; KMS-only and unknown caps → EOPNOTSUPP (drm_ioctl.c drm_getcap)",
    needs: ["vgem"],
    run: scoped((u, fds) => {
      const fd = vgem(u, fds);
      assert.equal(
        drmGetCap(u, fd, DRM_CAP_PRIME),
        BigInt(DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT),
      );
      assert.equal(drmGetCap(u, fd, DRM_CAP_TIMESTAMP_MONOTONIC), 1n);
      assert.equal(drmGetCap(u, fd, DRM_CAP_SYNCOBJ), 0n);
      assert.equal(drmGetCap(u, fd, DRM_CAP_SYNCOBJ_TIMELINE), 0n);
      expectErrno("EOPNOTSUPP", () => drmGetCap(u, fd, DRM_CAP_DUMB_BUFFER), "DUMB_BUFFER");
      expectErrno("EOPNOTSUPP", () => drmGetCap(u, fd, 0x99), "cap 0x99");
    }),
  },
  {
    suite: "drm",
    name: "vgem dumb buffers: pitch DIV_ROUND_UP(width * bpp, 8), size PAGE_ALIGN(pitch * height); zero width → EINVAL (drm_gem_shmem_dumb_create, drm_mode_create_dumb)",
    needs: ["vgem"],
    run: scoped((u, fds) => {
      const fd = vgem(u, fds);
      const cases = [
        { width: 3, height: 5, bpp: 12, pitch: 5, size: PAGE },
        { width: 33, height: 1, bpp: 24, pitch: 99, size: PAGE },
        { width: 640, height: 480, bpp: 16, pitch: 1280, size: 614400 },
        { width: 1920, height: 1081, bpp: 32, pitch: 7680, size: 8302592 },
        { width: 7, height: 3, bpp: 1, pitch: 1, size: PAGE },
      ];
      for (const c of cases) {
        const r = drmModeCreateDumb(u, fd, c);
        assert.deepEqual(
          { pitch: r.pitch, size: r.size },
          { pitch: c.pitch, size: c.size },
          `${c.width}x${c.height}@${c.bpp}`,
        );
        drmGemClose(u, fd, r.handle);
      }
      expectErrno("EINVAL", () => drmModeCreateDumb(u, fd, { width: 0, height: 4, bpp: 32 }));
      expectErrno("EINVAL", () =>
        drmModeCreateDumb(u, fd, { width: 0x10000, height: 0x10000, bpp: 32 }),
      );
    }),
  },
  {
    suite: "drm",
    name: "MAP_DUMB offsets start at DRM_FILE_PAGE_OFFSET_START (4 GiB), follow one another, and a freed range is reused best-fit; mmap outside an object → EINVAL (drm_vma_offset_add, drm_gem_mmap)",
    needs: ["vgem"],
    run: scoped((u, fds) => {
      const fd = vgem(u, fds);
      const make = (pages: number): { handle: number; offset: number } => {
        const r = drmModeCreateDumb(u, fd, { width: 1024, height: pages, bpp: 32 });
        return { handle: r.handle, offset: drmModeMapDumb(u, fd, r.handle) };
      };
      const a = make(1);
      const b = make(2);
      const c = make(1);
      assert.equal(a.offset, FIRST_OFFSET);
      assert.equal(b.offset, FIRST_OFFSET + PAGE);
      assert.equal(c.offset, FIRST_OFFSET + 3 * PAGE);
      assert.equal(drmModeMapDumb(u, fd, a.handle), a.offset, "the offset is made once");
      drmGemClose(u, fd, b.handle);
      const d = make(1);
      assert.equal(d.offset, FIRST_OFFSET + PAGE, "the 2-page hole is the best fit");
      const e = make(1);
      assert.equal(e.offset, FIRST_OFFSET + 2 * PAGE);
      const f = make(1);
      assert.equal(f.offset, FIRST_OFFSET + 4 * PAGE);
      const m = u.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, e.offset);
      u.munmap(m);
      expectErrno(
        "EINVAL",
        () => u.mmap(PAGE, PROT_READ, MAP_SHARED, fd, FIRST_OFFSET - PAGE),
        "below",
      );
      expectErrno(
        "EINVAL",
        () => u.mmap(2 * PAGE, PROT_READ, MAP_SHARED, fd, e.offset),
        "2 pages of a 1-page object",
      );
      for (const o of [a, c, d, e, f]) drmGemClose(u, fd, o.handle);
    }),
  },
  {
    suite: "drm",
    name: "vgem MAP_PRIVATE → EINVAL, through the DRM fd and through its PRIME dma-buf (drm_gem_shmem_mmap: is_cow_mapping)",
    needs: ["vgem"],
    run: scoped((u, fds) => {
      const fd = vgem(u, fds);
      const r = drmModeCreateDumb(u, fd, { width: 1024, height: 2, bpp: 32 });
      const offset = drmModeMapDumb(u, fd, r.handle);
      expectErrno(
        "EINVAL",
        () => u.mmap(2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, offset),
        "DRM fd",
      );
      expectErrno(
        "EINVAL",
        () => u.mmap(PAGE, PROT_READ, MAP_PRIVATE, fd, offset),
        "read-only private",
      );
      const buf = fds.add(drmPrimeHandleToFd(u, fd, r.handle, DRM_CLOEXEC | DRM_RDWR));
      expectErrno(
        "EINVAL",
        () => u.mmap(2 * PAGE, PROT_READ, MAP_PRIVATE, buf, 0),
        "PRIME dma-buf",
      );
      const ok = u.mmap(2 * PAGE, PROT_READ, MAP_SHARED, buf, 0);
      u.munmap(ok);
      drmGemClose(u, fd, r.handle);
    }),
  },
];
