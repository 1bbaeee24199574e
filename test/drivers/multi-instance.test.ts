/**
 * Several instances of every device kind in one kernel: Linux's device numbering
 * (cardN and renderD minors from their own ranges, the lowest free /dev/videoN), distinct
 * DMA masters with their own coherency, mask and IOMMU, and each instance doing its own
 * work correctly.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { simdisplayProbe } from "../../src/drivers/gpu/drm/simdisplay/simdisplay.js";
import { simgpuProbe, simgpuTransform } from "../../src/drivers/gpu/drm/simgpu/simgpu.js";
import { vgemProbe } from "../../src/drivers/gpu/drm/vgem/vgem.js";
import { vividProbe, vividTestPattern } from "../../src/drivers/media/test-drivers/vivid/vivid.js";
import { KernelError } from "../../src/errno.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
  DMA_BUF_SYNC_WRITE,
} from "../../src/include/uapi/dma-buf.js";
import { DRM_CLOEXEC, DRM_RDWR } from "../../src/include/uapi/drm.js";
import { MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE } from "../../src/include/uapi/fcntl.js";
import { SIMGPU_OP_INVERT, SIMGPU_SUBMIT_OUT_FENCE } from "../../src/include/uapi/simgpu-drm.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_MEMORY_MMAP,
  V4L2_PIX_FMT_YUYV,
} from "../../src/include/uapi/videodev2.js";
import { Kernel } from "../../src/kernel/kernel.js";
import {
  drmGetVersion,
  drmPrimeFdToHandle,
  drmPrimeHandleToFd,
  simgpuGemCreate,
  simgpuSubmit,
} from "../../src/uapi/drm.js";
import { dmaBufSync, dmaHeapAlloc, syncFileStatus } from "../../src/uapi/lib.js";
import { SimUapi } from "../../src/uapi/sim.js";
import {
  vidiocDqbuf,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocQuerycap,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocStreamon,
} from "../../src/uapi/v4l2.js";

function soc() {
  const k = new Kernel({ profile: "arm64" });
  const vgem = vgemProbe(k);
  const gpu0 = simgpuProbe(k, { device: { coherent: false, dmaBits: 32, iommu: false } });
  const disp0 = simdisplayProbe(k, { width: 64, height: 48 });
  const gpu1 = simgpuProbe(k, { name: "gpu-b", device: { coherent: true, iommu: true } });
  const disp1 = simdisplayProbe(k, { width: 32, height: 16, device: { dmaBits: 32 } });
  const cam0 = vividProbe(k);
  const cam1 = vividProbe(k, { capture: { coherent: true, iommu: true } });
  return { k, vgem, gpu0, gpu1, disp0, disp1, cam0, cam1, u: new SimUapi(k) };
}

test("device numbering: DRM primary and render minors from their own ranges, /dev/videoN lowest free", () => {
  const { u, gpu0, gpu1, disp0, disp1, cam0, cam1 } = soc();
  assert.deepEqual(u.readdir("/dev/dri"), [
    "card0",
    "card1",
    "card2",
    "card3",
    "card4",
    "renderD128",
    "renderD129",
    "renderD130",
  ]);
  assert.deepEqual([gpu0.cardPath, gpu0.renderPath], ["/dev/dri/card1", "/dev/dri/renderD129"]);
  assert.deepEqual([gpu1.cardPath, gpu1.renderPath], ["/dev/dri/card3", "/dev/dri/renderD130"]);
  assert.deepEqual([disp0.minor, disp1.minor], [2, 4]);
  assert.equal(drmGetVersion(u, u.open("/dev/dri/renderD130", O_RDWR)).name, "simgpu");
  assert.equal(drmGetVersion(u, u.open("/dev/dri/card4", O_RDWR)).name, "simdisplay");
  assert.deepEqual(u.readdir("/dev"), ["udmabuf", "video0", "video1", "video2", "video3"]);
  assert.deepEqual(
    [cam0.capture.vdev.path, cam0.output.vdev.path, cam1.capture.vdev.path, cam1.output.vdev.path],
    ["/dev/video0", "/dev/video1", "/dev/video2", "/dev/video3"],
  );
  const busInfo = vidiocQuerycap(u, u.open("/dev/video2", O_RDWR)).busInfo;
  assert.equal(busInfo, "platform:vivid-001");
});

test("each instance is its own DMA master with its own configuration", () => {
  const { k, gpu0, gpu1, disp1, cam1 } = soc();
  const names = k.machine.devices.map((d) => d.name);
  for (const n of [
    "vgem",
    "simgpu",
    "gpu-b",
    "simdisplay",
    "simdisplay-1",
    "vivid-cap",
    "vivid-out",
    "vivid-cap-1",
    "vivid-out-1",
  ])
    assert.ok(names.includes(n), `${n} in ${names.join(",")}`);
  assert.deepEqual(
    [gpu0.dev.coherent, gpu0.dev.dmaMask, gpu0.dev.iommu === undefined],
    [false, 2 ** 32 - 1, true],
  );
  assert.deepEqual(
    [gpu1.dev.name, gpu1.dev.coherent, gpu1.dev.iommu !== undefined],
    ["gpu-b", true, true],
  );
  assert.equal(disp1.dev.dmaMask, 2 ** 32 - 1);
  assert.equal(cam1.capture.device.name, "vivid-cap-1");
  assert.equal(cam1.capture.device.coherent, true);
  assert.notEqual(gpu0.fenceContext, gpu1.fenceContext, "one fence timeline per GPU");
});

test("a taken device name is EEXIST; an explicit vivid instance number names its queue", () => {
  const k = new Kernel({ profile: "arm64" });
  simgpuProbe(k, { name: "npu" });
  assert.throws(
    () => simgpuProbe(k, { name: "npu" }),
    (e: unknown) => e instanceof KernelError && e.code === "EEXIST",
  );
  const v = vividProbe(k, { instance: 4 });
  assert.equal(v.capture.queue.name, "vivid-004-vid-cap");
  assert.equal(v.capture.device.name, "vivid-cap-4");
  assert.equal(vividProbe(k).capture.queue.name, "vivid-005-vid-cap");
});

test("two GPUs invert one heap buffer, each into its own object: both results exact, no violations", () => {
  const { k, u, gpu0, gpu1 } = soc();
  const W = 64;
  const H = 32;
  const size = W * H * 4;
  const heap = u.open("/dev/dma_heap/system", O_RDWR);
  const src = dmaHeapAlloc(u, heap, size);
  const frame = new Uint8Array(size).map((_, i) => (i * 7 + 3) & 0xff);
  const map = u.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, src, 0);
  dmaBufSync(u, src, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
  map.write(0, frame);
  dmaBufSync(u, src, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
  const params = { width: W, height: H, srcPitch: W * 4, dstPitch: W * 4 };
  const want = simgpuTransform(SIMGPU_OP_INVERT, frame, params);
  for (const [path, gpu] of [
    ["/dev/dri/renderD129", gpu0],
    ["/dev/dri/renderD130", gpu1],
  ] as const) {
    const fd = u.open(path, O_RDWR);
    const srcH = drmPrimeFdToHandle(u, fd, src);
    const dst = simgpuGemCreate(u, fd, size);
    const job = simgpuSubmit(u, fd, {
      op: SIMGPU_OP_INVERT,
      srcHandle: srcH,
      dstHandle: dst.handle,
      ...params,
      flags: SIMGPU_SUBMIT_OUT_FENCE,
    });
    assert.equal(job.seqno, 1, "each GPU numbers its own jobs");
    k.machine.clock.runUntilCondition(() => syncFileStatus(u, job.outFenceFd) === 1);
    assert.equal(gpu.jobsCompleted, 1);
    const out = drmPrimeHandleToFd(u, fd, dst.handle, DRM_CLOEXEC | DRM_RDWR);
    const view = u.mmap(size, PROT_READ, MAP_SHARED, out, 0);
    dmaBufSync(u, out, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
    assert.deepEqual(view.read(0, size), want, `${path}'s output`);
    dmaBufSync(u, out, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
    assert.ok(gpu.dev.bytesRead >= size && gpu.dev.bytesWritten >= size);
  }
  assert.deepEqual(
    k.machine.violations.list.map((v) => v.message),
    [],
  );
});

test("the second vivid instance captures its test pattern on /dev/video2 with its own DMA master", () => {
  const { k, u, cam0, cam1 } = soc();
  const fd = u.open("/dev/video2", O_RDWR);
  const fmt = vidiocSFmt(u, fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, {
    width: 320,
    height: 180,
    pixelformat: V4L2_PIX_FMT_YUYV,
  });
  vidiocReqbufs(u, fd, { count: 1, type: V4L2_BUF_TYPE_VIDEO_CAPTURE, memory: V4L2_MEMORY_MMAP });
  const b = vidiocQuerybuf(u, fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, V4L2_MEMORY_MMAP, 0);
  const view = u.mmap(b.length, PROT_READ, MAP_SHARED, fd, b.offset);
  vidiocQbuf(u, fd, { type: V4L2_BUF_TYPE_VIDEO_CAPTURE, memory: V4L2_MEMORY_MMAP, index: 0 });
  vidiocStreamon(u, fd, V4L2_BUF_TYPE_VIDEO_CAPTURE);
  const done = vidiocDqbuf(u, fd, V4L2_BUF_TYPE_VIDEO_CAPTURE, V4L2_MEMORY_MMAP);
  assert.deepEqual(view.read(0, fmt.sizeimage), vividTestPattern(fmt, done.sequence));
  assert.equal(cam1.capture.framesCaptured, 1);
  assert.equal(cam0.capture.framesCaptured, 0);
  assert.equal(cam0.capture.device.bytesWritten, 0);
  assert.ok(cam1.capture.device.bytesWritten >= fmt.sizeimage);
  assert.equal(k.machine.violations.count, 0);
});
