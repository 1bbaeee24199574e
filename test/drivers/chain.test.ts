/**
 * Device kinds chained by dma-bufs the way a platform's userspace chains them: vivid
 * captures, its buffer (EXPBUF) is the ISP's (vim2m) OUTPUT buffer (DMABUF), and the
 * ISP's CAPTURE buffer (EXPBUF) is read by two consumers at once — scanned out by
 * simdisplay (PRIME + ADDFB2) and filtered by simnpu (PRIME import) — each device its own
 * DMA master with its own coherency and IOMMU. Every result equals the devices' pure
 * functions composed; no violations.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { simnpuCompute, simnpuProbe } from "../../src/drivers/accel/simnpu/simnpu.js";
import { simdisplayProbe } from "../../src/drivers/gpu/drm/simdisplay/simdisplay.js";
import { vim2mProbe, vim2mProcess } from "../../src/drivers/media/test-drivers/vim2m.js";
import { vividProbe, vividTestPattern } from "../../src/drivers/media/test-drivers/vivid/vivid.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
} from "../../src/include/uapi/dma-buf.js";
import { DRM_CLOEXEC, DRM_RDWR } from "../../src/include/uapi/drm.js";
import { DRM_FORMAT_XRGB8888 } from "../../src/include/uapi/drm-mode.js";
import { MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ } from "../../src/include/uapi/fcntl.js";
import { SIMNPU_OP_CONV3X3 } from "../../src/include/uapi/simnpu-accel.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE as CAP,
  V4L2_BUF_TYPE_VIDEO_OUTPUT as OUT,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_MMAP,
  V4L2_PIX_FMT_XBGR32,
  V4L2_PIX_FMT_YUYV,
} from "../../src/include/uapi/videodev2.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { crc32 } from "../../src/lib/crc32.js";
import { simnpuBoCreate, simnpuSubmit, simnpuWait } from "../../src/uapi/accel.js";
import {
  drmCrcOpen,
  drmCrcRead,
  drmModeAddFB2,
  drmModeGetConnector,
  drmModeGetResources,
  drmModeSetCrtc,
  drmPrimeFdToHandle,
  drmPrimeHandleToFd,
} from "../../src/uapi/drm.js";
import { dmaBufSync } from "../../src/uapi/lib.js";
import { SimUapi } from "../../src/uapi/sim.js";
import {
  vidiocDqbuf,
  vidiocExpbuf,
  vidiocQbuf,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocStreamon,
} from "../../src/uapi/v4l2.js";

const W = 64;
const H = 32;

test("camera -> ISP -> (display, NPU): one frame through four devices by dma-buf, every output as the pure functions say", () => {
  const k = new Kernel({ profile: "arm64" });
  const cam = vividProbe(k, { frameSizes: "continuous" });
  const isp = vim2mProbe(k, { name: "isp", device: { coherent: false, iommu: true } });
  const disp = simdisplayProbe(k, { width: W, height: H });
  const npu = simnpuProbe(k, { name: "npu", device: { coherent: true, dmaBits: 32 } });
  const u = new SimUapi(k);

  // Camera: one MMAP buffer, exported.
  const camFd = u.open(cam.capture.vdev.path, O_RDWR);
  const camFmt = vidiocSFmt(u, camFd, CAP, { width: W, height: H, pixelformat: V4L2_PIX_FMT_YUYV });
  vidiocReqbufs(u, camFd, { count: 1, type: CAP, memory: V4L2_MEMORY_MMAP });
  const camBuf = vidiocExpbuf(u, camFd, { type: CAP, index: 0, flags: O_RDWR | O_CLOEXEC });
  vidiocQbuf(u, camFd, { index: 0, type: CAP, memory: V4L2_MEMORY_MMAP });
  vidiocStreamon(u, camFd, CAP);
  const shot = vidiocDqbuf(u, camFd, CAP, V4L2_MEMORY_MMAP);

  // ISP: the camera's buffer in (DMABUF), an MMAP buffer out, exported.
  const ispFd = u.open(isp.path, O_RDWR);
  const o = vidiocSFmt(u, ispFd, OUT, { width: W, height: H, pixelformat: V4L2_PIX_FMT_YUYV });
  const c = vidiocSFmt(u, ispFd, CAP, { width: W, height: H, pixelformat: V4L2_PIX_FMT_XBGR32 });
  vidiocReqbufs(u, ispFd, { count: 1, type: OUT, memory: V4L2_MEMORY_DMABUF });
  vidiocReqbufs(u, ispFd, { count: 1, type: CAP, memory: V4L2_MEMORY_MMAP });
  const ispBuf = vidiocExpbuf(u, ispFd, { type: CAP, index: 0, flags: O_RDWR | O_CLOEXEC });
  vidiocQbuf(u, ispFd, {
    index: 0,
    type: OUT,
    memory: V4L2_MEMORY_DMABUF,
    fd: camBuf,
    bytesused: shot.bytesused,
  });
  vidiocQbuf(u, ispFd, { index: 0, type: CAP, memory: V4L2_MEMORY_MMAP });
  vidiocStreamon(u, ispFd, OUT);
  vidiocStreamon(u, ispFd, CAP);
  vidiocDqbuf(u, ispFd, CAP, V4L2_MEMORY_MMAP);
  const ispOut = vim2mProcess(vividTestPattern(camFmt, shot.sequence), o, c);

  // Consumer 1: the display scans the ISP's buffer out.
  const card = u.open(disp.drm.primaryPath, O_RDWR);
  const res = drmModeGetResources(u, card);
  const conn = drmModeGetConnector(u, card, res.connectors[0]!);
  const fb = drmModeAddFB2(u, card, {
    width: W,
    height: H,
    pixelFormat: DRM_FORMAT_XRGB8888,
    handles: [drmPrimeFdToHandle(u, card, ispBuf)],
    pitches: [c.bytesperline],
    offsets: [0],
  });
  drmModeSetCrtc(u, card, {
    crtcId: res.crtcs[0]!,
    fbId: fb,
    x: 0,
    y: 0,
    connectors: [conn.connectorId],
    mode: conn.modes[0]!,
  });
  const crcFd = drmCrcOpen(u, disp.minor, 0, "auto");
  assert.equal(
    drmCrcRead(u, crcFd)[0]!.crcs[0],
    crc32(ispOut),
    "the display shows the ISP's output",
  );

  // Consumer 2: the NPU filters the same buffer.
  const acc = u.open(npu.path, O_RDWR);
  const inH = drmPrimeFdToHandle(u, acc, ispBuf);
  const out = simnpuBoCreate(u, acc, c.sizeimage);
  const p = { width: W, height: H, cpp: 4, inPitch: c.bytesperline };
  simnpuSubmit(u, acc, {
    op: SIMNPU_OP_CONV3X3,
    inHandle: inH,
    outHandle: out.handle,
    ...p,
    outPitch: W * 4,
  });
  simnpuWait(u, acc, out.handle, k.machine.clock.now + 1e9);
  const outFd = drmPrimeHandleToFd(u, acc, out.handle, DRM_CLOEXEC | DRM_RDWR);
  const view = u.mmap(c.sizeimage, PROT_READ, MAP_SHARED, outFd, 0);
  dmaBufSync(u, outFd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
  assert.deepEqual(view.read(0, W * 4 * H), simnpuCompute(SIMNPU_OP_CONV3X3, ispOut, p));
  dmaBufSync(u, outFd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);

  assert.deepEqual(
    [cam.capture.device.name, isp.dev.name, disp.dev.name, npu.dev.name],
    ["vivid-cap", "isp", "simdisplay", "npu"],
  );
  assert.deepEqual(
    k.machine.violations.list.map((v) => v.message),
    [],
  );
});
