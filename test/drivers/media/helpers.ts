/** Shared set-up for the V4L2 tests: a kernel with vivid and an app process. */

import {
  type Vivid,
  type VividOptions,
  vividProbe,
} from "../../../src/drivers/media/test-drivers/vivid/vivid.js";
import { KernelError } from "../../../src/errno.js";
import { O_RDWR } from "../../../src/include/uapi/fcntl.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_PIX_FMT_YUYV,
} from "../../../src/include/uapi/videodev2.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import { SimUapi } from "../../../src/uapi/sim.js";
import { type V4l2PixFormat, vidiocSFmt } from "../../../src/uapi/v4l2.js";

export interface Rig {
  readonly kernel: Kernel;
  readonly vivid: Vivid;
  readonly app: SimUapi;
  readonly cap: number;
  readonly fmt: V4l2PixFormat;
}

/** A kernel on `profile` with vivid probed, an app with /dev/video0 open at 320x180 YUYV. */
export function rig(profile: string, options: VividOptions = {}, flags = O_RDWR): Rig {
  const kernel = new Kernel({ profile });
  const vivid = vividProbe(kernel, options);
  const app = new SimUapi(kernel);
  const cap = app.open("/dev/video0", flags);
  const fmt = vidiocSFmt(app, cap, V4L2_BUF_TYPE_VIDEO_CAPTURE, {
    width: 320,
    height: 180,
    pixelformat: V4L2_PIX_FMT_YUYV,
  });
  return { kernel, vivid, app, cap, fmt };
}

/** The errno name `fn` throws, or "ok". */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (e instanceof KernelError) return e.code;
    throw e;
  }
}

/** Index of the first differing byte, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
