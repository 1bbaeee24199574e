/**
 * `npm run fuzz:alloc`: the host cost of very large allocations (issue 11's figures).
 * Each runs on a fresh x86-64 machine (16 GiB of RAM, a 16 MiB L3) through the uAPI:
 * a 15 GiB and a 2 GiB system-heap allocation, and four VIDIOC_CREATE_BUFS of 4 GiB on
 * vivid with either allocator (dma-contig: one contiguous block, which x86's 256 MiB
 * CMA and the buddy allocator's 4 MiB blocks cannot give: ENOMEM at once, as Linux;
 * dma-sg: scattered pages, three fit and the fourth fails with ENOMEM). Prints host
 * time, the process's resident memory and what each call returned.
 */

import { vividProbe } from "../src/drivers/media/test-drivers/vivid/vivid-core.js";
import { KernelError } from "../src/errno.js";
import { O_RDWR } from "../src/include/uapi/fcntl.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_MEMORY_MMAP,
  V4L2_PIX_FMT_YUYV,
} from "../src/include/uapi/videodev2.js";
import { Kernel } from "../src/kernel/kernel.js";
import { dmaHeapAlloc } from "../src/uapi/lib.js";
import { SimUapi } from "../src/uapi/sim.js";
import { vidiocCreateBufs, vidiocReqbufs } from "../src/uapi/v4l2.js";

const GiB = 2 ** 30;
const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;

/** Runs `fn`, printing its host time, the resident memory after it and its outcome. */
function measure(what: string, fn: () => string): void {
  const t0 = performance.now();
  let outcome: string;
  try {
    outcome = fn();
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    outcome = `${e.code} (${e.message})`;
  }
  const ms = performance.now() - t0;
  const rss = process.memoryUsage().rss;
  process.stdout.write(
    `${what.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms  rss ${mib(rss).padStart(8)}  ${outcome}\n`,
  );
}

function heap(bytes: number): void {
  const k = new Kernel({ profile: "x86-64" });
  const app = new SimUapi(k);
  const fd = app.open("/dev/dma_heap/system", O_RDWR);
  measure(`system heap, ${bytes / GiB} GiB`, () => `fd ${dmaHeapAlloc(app, fd, bytes)}`);
  k.machine.release();
}

function createBufs(allocator: "dma-contig" | "dma-sg"): void {
  const k = new Kernel({ profile: "x86-64" });
  vividProbe(k, { allocator });
  const app = new SimUapi(k);
  const cap = app.open("/dev/video0", O_RDWR);
  vidiocReqbufs(app, cap, {
    count: 0,
    type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
    memory: V4L2_MEMORY_MMAP,
  });
  for (let i = 1; i <= 4; i++)
    measure(`vivid ${allocator}, CREATE_BUFS #${i} of 4 GiB`, () => {
      const r = vidiocCreateBufs(app, cap, {
        count: 1,
        memory: V4L2_MEMORY_MMAP,
        type: V4L2_BUF_TYPE_VIDEO_CAPTURE,
        fmt: { width: 640, height: 480, pixelformat: V4L2_PIX_FMT_YUYV, sizeimage: 4 * GiB - 4096 },
      });
      return `buffer ${r.index}`;
    });
  k.machine.release();
}

heap(15 * GiB);
heap(2 * GiB);
createBufs("dma-contig");
createBufs("dma-sg");
process.stdout.write(`peak rss ${mib(process.resourceUsage().maxRSS * 1024)}\n`);
