/** Shared setup for the DRM tests: a kernel with vgem, simgpu and simdisplay probed in order. */

import {
  type SimDisplayOptions,
  simdisplayProbe,
} from "../../../src/drivers/gpu/drm/simdisplay/simdisplay.js";
import { simgpuProbe } from "../../../src/drivers/gpu/drm/simgpu/simgpu.js";
import { type VgemOptions, vgemProbe } from "../../../src/drivers/gpu/drm/vgem/vgem.js";
import { KernelError } from "../../../src/errno.js";
import { MAP_SHARED, PROT_READ, PROT_WRITE } from "../../../src/include/uapi/fcntl.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import { drmModeMapDumb } from "../../../src/uapi/drm.js";
import { SimUapi } from "../../../src/uapi/sim.js";

export function boot(
  profile = "arm64",
  opts: { display?: SimDisplayOptions; vgem?: VgemOptions } = {},
) {
  const k = new Kernel({ profile });
  const vgem = vgemProbe(k, opts.vgem);
  const gpu = simgpuProbe(k);
  const disp = simdisplayProbe(k, { width: 64, height: 48, ...opts.display });
  const u = new SimUapi(k, "app");
  return { k, vgem, gpu, disp, u };
}

/** A dumb buffer's read-write shared mapping (DRM_IOCTL_MODE_MAP_DUMB, then mmap at its offset). */
export function mapDumb(u: SimUapi, fd: number, handle: number, size: number) {
  return u.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, drmModeMapDumb(u, fd, handle));
}

/** assert.throws matcher for a KernelError with errno `code`. */
export function errno(code: string): (e: unknown) => boolean {
  return (e) => e instanceof KernelError && e.code === code;
}

/** A deterministic XRGB8888 frame, `w*4` bytes per row at `pitch`. */
export function pattern(w: number, h: number, pitch: number, seed: number): Uint8Array {
  const b = new Uint8Array(pitch * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w * 4; x++) b[y * pitch + x] = (x * 7 + y * 13 + seed * 31) & 0xff;
  return b;
}

/** The visible bytes of a frame (what the display CRC covers). */
export function visible(
  frame: Uint8Array,
  w: number,
  h: number,
  pitch: number,
  bpp = 4,
): Uint8Array {
  const out = new Uint8Array(w * bpp * h);
  for (let y = 0; y < h; y++) out.set(frame.subarray(y * pitch, y * pitch + w * bpp), y * w * bpp);
  return out;
}
