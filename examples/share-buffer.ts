/**
 * The life of one dma-buf (docs/dma-buf.md): a camera app allocates a buffer from the
 * system heap, passes the fd to a compositor process, a camera device fills it by DMA
 * and the compositor reads it through mmap, bracketed by DMA_BUF_IOCTL_SYNC. The
 * implicit fence of the camera's write is waited for by the compositor's poll.
 * Run it with `node dist/examples/share-buffer.js`.
 */

import {
  DMA_BIDIRECTIONAL,
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_START,
  DMA_RESV_USAGE_WRITE,
  DmaFence,
  type DmaFenceOps,
  dmaBufGet,
  formatViolation,
  Kernel,
  MAP_SHARED,
  O_CLOEXEC,
  O_RDWR,
  POLLIN,
  PROT_READ,
  SimUapi,
  uapi,
} from "../src/index.js";

const SIZE = 64 * 1024;

/** The camera driver's fence: signalled when its DMA completes. */
const cameraFenceOps: DmaFenceOps = {
  getDriverName: () => "camera",
  getTimelineName: () => "capture",
};

export interface ShareResult {
  /** Virtual time (ns) at which the compositor's poll said the frame was ready. */
  readyAt: number;
  /** Virtual time the camera's DMA finished. */
  dmaDoneAt: number;
  firstBytes: number[];
  violations: string[];
  bufinfo: string;
  /** Buffers alive after both processes exit (0: nothing leaked). */
  liveAfterExit: number;
}

export function shareBuffer(bracket: boolean): ShareResult {
  const k = new Kernel({ profile: "arm64" });
  const camera = k.machine.addDevice("camera"); // non-coherent on arm64
  const app = new SimUapi(k, "camera-app");
  const compositor = new SimUapi(k, "compositor");

  // 1. Allocate from the system heap and name the buffer.
  const heap = app.open("/dev/dma_heap/system", O_RDWR | O_CLOEXEC);
  const fd = uapi.dmaHeapAlloc(app, heap, SIZE);
  uapi.dmaBufSetName(app, fd, "frame0");

  // 2. Pass it to the compositor (SCM_RIGHTS); the compositor maps it.
  const cfd = app.sendFd(fd, compositor);
  const view = compositor.mmap(SIZE, PROT_READ, MAP_SHARED, cfd, 0);

  // 3. The camera driver imports the fd, attaches, maps, and starts DMA with a fence.
  const buf = dmaBufGet(app.process, fd);
  const at = buf.attach(camera);
  const sgt = buf.mapAttachment(at, DMA_BIDIRECTIONAL);
  const ctx = k.fences.contexts.alloc(1);
  const fence = new DmaFence(cameraFenceOps, k.machine.clock, ctx, 1);
  buf.resv.lock();
  buf.resv.reserveFences(1);
  buf.resv.addFence(fence, DMA_RESV_USAGE_WRITE);
  buf.resv.unlock();
  let dmaDoneAt = 0;
  camera.submit(
    "capture frame0",
    SIZE,
    () =>
      camera.writeSegments(
        sgt.dmaSegments(),
        new Uint8Array(SIZE).map((_, i) => i & 0xff),
      ),
    () => {
      dmaDoneAt = k.machine.now;
      fence.signal();
    },
  );
  const info = k.bufinfo();

  // 4. The compositor waits for the implicit fence, then reads with the CPU.
  const [rev] = compositor.poll([{ fd: cfd, events: POLLIN }], -1);
  if (rev !== POLLIN) throw new Error("poll did not report the frame ready");
  const readyAt = k.machine.now;
  if (bracket) uapi.dmaBufSync(compositor, cfd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
  const firstBytes = [...view.read(0, 4)];
  if (bracket) uapi.dmaBufSync(compositor, cfd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);

  // 5. Teardown: the driver lets go, both processes exit; the buffer is freed.
  buf.unmapAttachment(at, sgt, DMA_BIDIRECTIONAL);
  buf.detach(at);
  buf.put();
  app.exit();
  compositor.exit();
  return {
    readyAt,
    dmaDoneAt,
    firstBytes,
    violations: k.machine.violations.list.map(formatViolation),
    bufinfo: info,
    liveAfterExit: k.dmaBuf.buffers.length,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const bracket of [true, false]) {
    const r = shareBuffer(bracket);
    console.log(`with DMA_BUF_IOCTL_SYNC: ${bracket}`);
    console.log(`  frame ready at ${r.readyAt} ns (DMA done at ${r.dmaDoneAt} ns)`);
    console.log(`  first bytes the compositor read: ${r.firstBytes.join(" ")}`);
    for (const v of r.violations) console.log(`  ${v}`);
    console.log(`  buffers alive after exit: ${r.liveAfterExit}`);
  }
  console.log(shareBuffer(true).bufinfo);
}
