/** simdisplay: KMS ioctls and their errnos, flips and events, scanout CRCs. */

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DRM_FORMAT_XRGB8888,
  DRM_FORMAT_YUYV,
  DRM_MODE_CONNECTED,
  DRM_MODE_PAGE_FLIP_EVENT,
} from "../../../src/include/uapi/drm-mode.js";
import { O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY } from "../../../src/include/uapi/fcntl.js";
import { crc32 } from "../../../src/lib/crc32.js";
import {
  drmCrcOpen,
  drmCrcRead,
  drmModeAddFB2,
  drmModeCreateDumb,
  drmModeGetConnector,
  drmModeGetResources,
  drmModePageFlip,
  drmModeRmFB,
  drmModeSetCrtc,
  drmPrimeFdToHandle,
  drmReadEvents,
} from "../../../src/uapi/drm.js";
import { dmaHeapAlloc } from "../../../src/uapi/lib.js";
import { SimUapi } from "../../../src/uapi/sim.js";
import { boot, errno, mapDumb, pattern, visible } from "./helpers.js";

const W = 64;
const H = 48;

function setup(...args: Parameters<typeof boot>) {
  const b = boot(...args);
  const { u } = b;
  const fd = u.open("/dev/dri/card2", O_RDWR);
  const res = drmModeGetResources(u, fd);
  const conn = drmModeGetConnector(u, fd, res.connectors[0]!);
  /** A dumb buffer with a pattern drawn through its write-combined mapping, and its fb. */
  const buffer = (seed: number, pitchPad = 0) => {
    const d = drmModeCreateDumb(u, fd, { width: W + pitchPad / 4, height: H, bpp: 32 });
    const map = mapDumb(u, fd, d.handle, d.size);
    const frame = pattern(W, H, d.pitch, seed);
    map.write(0, frame);
    const fb = drmModeAddFB2(u, fd, {
      width: W,
      height: H,
      pixelFormat: DRM_FORMAT_XRGB8888,
      handles: [d.handle],
      pitches: [d.pitch],
      offsets: [0],
    });
    return { ...d, map, fb, crc: crc32(visible(frame, W, H, d.pitch)) };
  };
  const on = (fb: number) =>
    drmModeSetCrtc(u, fd, {
      crtcId: res.crtcs[0]!,
      fbId: fb,
      x: 0,
      y: 0,
      connectors: [conn.connectorId],
      mode: conn.modes[0]!,
    });
  return { ...b, fd, res, conn, buffer, on };
}

test("resources, connector and its one mode", () => {
  const { fd, u, res, conn } = setup();
  assert.equal(res.crtcs.length, 1);
  assert.equal(res.connectors.length, 1);
  assert.equal(res.encoders.length, 1);
  assert.deepEqual(res.fbs, []);
  assert.equal(conn.connection, DRM_MODE_CONNECTED);
  assert.equal(conn.modes.length, 1);
  assert.equal(conn.modes[0]!.hdisplay, W);
  assert.equal(conn.modes[0]!.vdisplay, H);
  assert.throws(() => drmModeGetConnector(u, fd, 999), errno("ENOENT"));
  // KMS ioctls are not for render nodes (vgem's) nor for non-KMS drivers.
  const vgemCard = u.open("/dev/dri/card0", O_RDWR);
  assert.throws(() => drmModeGetResources(u, vgemCard), errno("EOPNOTSUPP"));
  const r = u.open("/dev/dri/renderD128", O_RDWR);
  assert.throws(() => drmModeGetResources(u, r), errno("EACCES"));
});

test("ADDFB2 checks pitch, handle, size and format; RMFB only the owner's", () => {
  const { fd, u } = setup();
  const d = drmModeCreateDumb(u, fd, { width: W, height: H, bpp: 32 });
  const fb = (o: Partial<Parameters<typeof drmModeAddFB2>[2]>) =>
    drmModeAddFB2(u, fd, {
      width: W,
      height: H,
      pixelFormat: DRM_FORMAT_XRGB8888,
      handles: [d.handle],
      pitches: [d.pitch],
      offsets: [0],
      ...o,
    });
  assert.throws(() => fb({ pitches: [W * 4 - 4] }), errno("EINVAL"), "pitch below width * cpp");
  assert.throws(
    () => fb({ pitches: [d.pitch * 2] }),
    errno("EINVAL"),
    "object too small for the pitch",
  );
  assert.throws(() => fb({ handles: [0] }), errno("EINVAL"));
  assert.throws(() => fb({ handles: [77] }), errno("ENOENT"));
  assert.throws(() => fb({ pixelFormat: 0x12345678 }), errno("EINVAL"));
  assert.throws(() => fb({ width: 0 }), errno("EINVAL"));
  assert.throws(() => fb({ flags: 4 }), errno("EINVAL"));
  const id = fb({});
  assert.deepEqual(drmModeGetResources(u, fd).fbs, [id]);
  // A YUYV framebuffer is legal KMS-wise but the primary plane cannot scan it out.
  const yuyv = fb({ pixelFormat: DRM_FORMAT_YUYV, pitches: [W * 2] });
  const other = new SimUapi(u.kernel, "other");
  const ofd = other.open("/dev/dri/card2", O_RDWR);
  assert.throws(() => drmModeRmFB(other, ofd, id), errno("ENOENT"));
  drmModeRmFB(u, fd, yuyv);
  assert.throws(() => drmModeRmFB(u, fd, yuyv), errno("ENOENT"));
});

test("SETCRTC errnos; the frame CRC is crc32 of the visible bytes, not the padding", () => {
  const { fd, u, res, conn, buffer, on, disp } = setup();
  const a = buffer(1, 64); // 64 bytes of padding per line
  assert.equal(a.pitch, W * 4 + 64);
  // The CRTC is off: no CRC data yet.
  assert.throws(() => drmCrcOpen(u, disp.minor, 0, "auto"), errno("EIO"));
  const crtcId = res.crtcs[0]!;
  const mode = conn.modes[0]!;
  assert.throws(
    () => drmModeSetCrtc(u, fd, { crtcId, fbId: a.fb, x: 0, y: 0, connectors: [], mode }),
    errno("EINVAL"),
    "a mode without connectors",
  );
  assert.throws(
    () =>
      drmModeSetCrtc(u, fd, { crtcId, fbId: 99, x: 0, y: 0, connectors: [conn.connectorId], mode }),
    errno("ENOENT"),
  );
  assert.throws(
    () =>
      drmModeSetCrtc(u, fd, {
        crtcId,
        fbId: a.fb,
        x: 8,
        y: 0,
        connectors: [conn.connectorId],
        mode,
      }),
    errno("ENOSPC"),
  );
  // Not the master: EACCES.
  const other = new SimUapi(u.kernel, "other");
  const ofd = other.open("/dev/dri/card2", O_RDWR);
  assert.throws(
    () => drmModeSetCrtc(other, ofd, { crtcId, fbId: 0, x: 0, y: 0, connectors: [], mode: null }),
    errno("EACCES"),
  );
  on(a.fb);
  const crcFd = drmCrcOpen(u, disp.minor, 0, "auto");
  // The control file refuses changes while data is open; unknown sources are EINVAL.
  const ctl = u.open(`/sys/kernel/debug/dri/${disp.minor}/crtc-0/crc/control`, O_WRONLY);
  assert.throws(() => u.write(ctl, new TextEncoder().encode("auto")), errno("EBUSY"));
  assert.throws(() => u.write(ctl, new TextEncoder().encode("plane9")), errno("EINVAL"));
  assert.throws(() => u.read(crcFd, 10), errno("EINVAL"), "a read shorter than a line");
  const raw = new TextDecoder().decode(u.read(crcFd, 64));
  assert.match(raw, /^0x[0-9a-f]{8} 0x[0-9a-f]{8}\n\0$/);
  const [e] = drmCrcRead(u, crcFd);
  assert.equal(e!.crcs[0], a.crc);
  assert.equal(e!.frame, Number.parseInt(raw.slice(2, 10), 16) + 1, "one entry per vblank");
  u.close(crcFd);
  // O_NONBLOCK readers get EAGAIN before the next vblank.
  const nb = u.open(`/sys/kernel/debug/dri/${disp.minor}/crtc-0/crc/data`, O_RDONLY | O_NONBLOCK);
  assert.throws(() => u.read(nb, 64), errno("EAGAIN"));
  u.close(nb);
  assert.equal(u.kernel.machine.violations.count, 0);
});

test("PAGE_FLIP: EBUSY while pending, the event carries the vblank sequence, the CRC follows", () => {
  const { fd, u, res, buffer, on, disp, k } = setup();
  const a = buffer(1);
  const b = buffer(2);
  const crtcId = res.crtcs[0]!;
  assert.throws(
    () => drmModePageFlip(u, fd, crtcId, b.fb, DRM_MODE_PAGE_FLIP_EVENT, 1n),
    errno("EBUSY"),
    "CRTC off",
  );
  on(a.fb);
  const crcFd = drmCrcOpen(u, disp.minor, 0, "auto");
  const first = drmCrcRead(u, crcFd)[0]!;
  assert.equal(first.crcs[0], a.crc);
  assert.throws(() => drmModePageFlip(u, fd, crtcId, b.fb, 0x100, 1n), errno("EINVAL"));
  assert.throws(() => drmModePageFlip(u, fd, 77, b.fb, 0, 1n), errno("ENOENT"));
  drmModePageFlip(u, fd, crtcId, b.fb, DRM_MODE_PAGE_FLIP_EVENT, 0xabcdn);
  assert.throws(
    () => drmModePageFlip(u, fd, crtcId, a.fb, DRM_MODE_PAGE_FLIP_EVENT, 2n),
    errno("EBUSY"),
  );
  // Nothing to read yet without blocking.
  const nb = u.open("/dev/dri/card2", O_RDWR | O_NONBLOCK);
  assert.throws(() => u.read(nb, 4096), errno("EAGAIN"));
  const [ev] = drmReadEvents(u, fd);
  assert.equal(ev!.userData, 0xabcdn);
  assert.equal(ev!.crtcId, crtcId);
  assert.equal(ev!.sequence, first.frame + 1);
  assert.ok(
    ev!.timestampNs > 0 && ev!.timestampNs <= k.machine.now,
    "stamped with the vblank's virtual time",
  );
  for (;;) {
    const e = drmCrcRead(u, crcFd)[0]!;
    if (e.frame < ev!.sequence) continue;
    assert.equal(e.frame, ev!.sequence);
    assert.equal(e.crcs[0], b.crc, "the frame of the flip's vblank shows the new buffer");
    break;
  }
  // RMFB of the buffer on screen turns the CRTC off.
  u.close(crcFd);
  drmModeRmFB(u, fd, b.fb);
  assert.equal(disp.crtc.active, false);
  assert.equal(k.machine.violations.count, 0);
});

test("importing into the display: CMA buffers yes, scattered system-heap buffers EINVAL without an IOMMU", () => {
  const { fd, u } = setup();
  const sys = u.open("/dev/dma_heap/system", O_RDWR);
  const cma = u.open("/dev/dma_heap/cma", O_RDWR);
  // Fragment the page allocator so the next buffer's two pages are not adjacent.
  const small = [0, 1, 2, 3].map(() => dmaHeapAlloc(u, sys, 4096));
  u.close(small[0]!);
  u.close(small[2]!);
  const scattered = dmaHeapAlloc(u, sys, 8192);
  assert.throws(() => drmPrimeFdToHandle(u, fd, scattered), errno("EINVAL"));
  const contiguous = dmaHeapAlloc(u, cma, 256 * 1024);
  const h = drmPrimeFdToHandle(u, fd, contiguous);
  assert.ok(h > 0);
  // An IOMMU stitches the scattered pages into one IOVA range.
  const withIommu = boot("arm64", { display: { device: { iommu: true } } });
  const u2 = withIommu.u;
  const fd2 = u2.open("/dev/dri/card2", O_RDWR);
  const sys2 = u2.open("/dev/dma_heap/system", O_RDWR);
  const small2 = [0, 1, 2, 3].map(() => dmaHeapAlloc(u2, sys2, 4096));
  u2.close(small2[0]!);
  u2.close(small2[2]!);
  const s2 = dmaHeapAlloc(u2, sys2, 8192);
  assert.ok(drmPrimeFdToHandle(u2, fd2, s2) > 0);
});

test("panning a larger framebuffer: each scanout's CRC is of the rows at the CRTC's x and y, back and forth", () => {
  const { fd, u, res, conn, disp } = setup();
  // A 2W x 2H buffer of distinct rows, scanned out W x H at three offsets in turn.
  const d = drmModeCreateDumb(u, fd, { width: 2 * W, height: 2 * H, bpp: 32 });
  const map = mapDumb(u, fd, d.handle, d.size);
  const frame = pattern(2 * W, 2 * H, d.pitch, 5);
  map.write(0, frame);
  const fb = drmModeAddFB2(u, fd, {
    width: 2 * W,
    height: 2 * H,
    pixelFormat: DRM_FORMAT_XRGB8888,
    handles: [d.handle],
    pitches: [d.pitch],
    offsets: [0],
  });
  let crcFd = -1;
  for (const [x, y] of [
    [0, 0],
    [8, 4],
    [0, 0],
    [W, H],
    [8, 4],
  ] as const) {
    drmModeSetCrtc(u, fd, {
      crtcId: res.crtcs[0]!,
      fbId: fb,
      x,
      y,
      connectors: [conn.connectorId],
      mode: conn.modes[0]!,
    });
    if (crcFd < 0) crcFd = drmCrcOpen(u, disp.minor, 0, "auto");
    disp.discardCrcEntries();
    const [e] = drmCrcRead(u, crcFd);
    const want = crc32(visible(frame.subarray(y * d.pitch + x * 4), W, H, d.pitch));
    assert.equal(e!.crcs[0], want, `panned to ${x},${y}`);
  }
  assert.equal(u.kernel.machine.violations.count, 0);
});

test("crc/data when a frame takes 2.5 periods to fetch: frame numbers rise with gaps and keep up with the vblank count", () => {
  // 64x48 XRGB on a device slowed to 4K XRGB's fetch/period ratio on cortex-a9.
  const slow = (W * H * 4) / (2.5 * (1e9 / 60));
  const { u, disp, k, buffer, on } = setup("cortex-a9", {
    display: { device: { bandwidthBytesPerNs: slow } },
  });
  on(buffer(1).fb);
  const crcFd = drmCrcOpen(u, disp.minor, 0, "auto");
  const frames: number[] = [];
  for (let i = 0; i < 20; i++) frames.push(drmCrcRead(u, crcFd)[0]!.frame);
  for (let i = 1; i < frames.length; i++) assert.ok(frames[i]! > frames[i - 1]!);
  assert.ok(frames[frames.length - 1]! - frames[0]! > 2 * frames.length, "gaps: not every vblank");
  assert.ok(disp.underruns > 0);
  // Each entry is of a vblank at most a fetch ago: the fetches do not fall behind.
  assert.ok(disp.vblankCount - frames[frames.length - 1]! <= 3);
  u.close(crcFd);
  assert.equal(k.machine.violations.count, 0);
});
