/**
 * Memory-to-memory conformance cases on vim2m (drivers/media/test-drivers/vim2m.c on
 * drivers/media/v4l2-core/v4l2-mem2mem.c, Linux 6.12). Debian's kernel builds neither;
 * scripts/kernel-conformance.mjs builds both from linux-source-6.12 as one out-of-tree
 * module and loads it in the VM. The model's side is vim2mProbe(k, { formats: "linux" })
 * (src/drivers/media/test-drivers/vim2m-linux.ts), probed by ./sim-backend.ts.
 *
 * The node is found by VIDIOC_QUERYCAP's driver name, whatever /dev/videoN it got.
 * Expected values are worked out from vim2m.c: formats[], vidioc_try_fmt(),
 * vim2m_open()'s defaults, device_process() and copy_two_pixels().
 */

import assert from "node:assert/strict";
import { MAP_SHARED, POLLIN, PROT_READ, PROT_WRITE } from "../../src/include/uapi/fcntl.js";
import {
  V4L2_BUF_CAP_SUPPORTS_DMABUF,
  V4L2_BUF_CAP_SUPPORTS_MMAP,
  V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS,
  V4L2_BUF_FLAG_TIMESTAMP_COPY,
  V4L2_BUF_FLAG_TIMESTAMP_MASK,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_CAP_STREAMING,
  V4L2_CAP_VIDEO_CAPTURE,
  V4L2_CAP_VIDEO_M2M,
  V4L2_CAP_VIDEO_OUTPUT,
  V4L2_COLORSPACE_REC709,
  V4L2_FIELD_NONE,
  V4L2_MEMORY_MMAP,
} from "../../src/include/uapi/videodev2.js";
import type { Uapi } from "../../src/uapi/uapi.js";
import {
  fourccToString,
  v4l2Fourcc,
  vidiocDqbuf,
  vidiocEnumFmt,
  vidiocGFmt,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocQuerycap,
  vidiocRemoveBufs,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocStreamon,
  vidiocTryFmt,
} from "../../src/uapi/v4l2.js";
import { expectErrno, type Fds, openV4l2Driver, scoped } from "./case-helpers.js";
// Types only: suite.ts imports this module, so a value import back would be a cycle.
import type { ConformanceCase } from "./suite.js";

const OUT = V4L2_BUF_TYPE_VIDEO_OUTPUT;
const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
const MMAP = V4L2_MEMORY_MMAP;
const fcc = v4l2Fourcc;
const JOB_TIMEOUT_MS = 10_000;

/** The first /dev/videoN whose VIDIOC_QUERYCAP driver is "vim2m"; -1 when there is none. */
export function openVim2m(u: Uapi): number {
  for (let i = 0; i < 32; i++) {
    const fd = openV4l2Driver(u, `/dev/video${i}`, "vim2m");
    if (fd >= 0) return fd;
  }
  return -1;
}

function vim2m(u: Uapi, h: Fds): number {
  const fd = openVim2m(u);
  assert.ok(fd >= 0, "no vim2m node");
  return h.add(fd);
}

/** A deterministic RGB24 picture: byte i of line y. */
function rgbPattern(width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let i = 0; i < width * 3; i++)
      out[y * width * 3 + i] = (i * 7 + y * 13 + (i % 3) * 50) & 0xff;
  return out;
}

/**
 * One job: `src` (OUTPUT, `outFmt`) in, the CAPTURE buffer (`capFmt`) out, both queues
 * with one MMAP buffer; returns the capture buffer's bytes and its DQBUF result.
 */
function runJob(
  u: Uapi,
  fd: number,
  outFmt: { width: number; height: number; pixelformat: number },
  capFmt: { width: number; height: number; pixelformat: number },
  src: Uint8Array,
) {
  const o = vidiocSFmt(u, fd, OUT, outFmt);
  const c = vidiocSFmt(u, fd, CAP, capFmt);
  assert.equal(src.length, o.sizeimage, "source size");
  const ro = vidiocReqbufs(u, fd, { count: 1, type: OUT, memory: MMAP });
  const rc = vidiocReqbufs(u, fd, { count: 1, type: CAP, memory: MMAP });
  const caps = V4L2_BUF_CAP_SUPPORTS_MMAP | V4L2_BUF_CAP_SUPPORTS_DMABUF;
  assert.equal(ro.capabilities & caps, caps, "OUTPUT caps");
  assert.equal(rc.capabilities & caps, caps, "CAPTURE caps");
  // vim2m_ioctl_ops sets no vidioc_remove_bufs: no REMOVE_BUFS bit (v4l_reqbufs), ENOTTY.
  assert.equal((ro.capabilities | rc.capabilities) & V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS, 0);
  expectErrno(
    "ENOTTY",
    () => vidiocRemoveBufs(u, fd, { index: 0, count: 1, type: CAP }),
    "VIDIOC_REMOVE_BUFS on vim2m",
  );
  const ob = vidiocQuerybuf(u, fd, OUT, MMAP, 0);
  const cb = vidiocQuerybuf(u, fd, CAP, MMAP, 0);
  assert.equal(ob.length, o.sizeimage, "vim2m_queue_setup: width * height * depth / 8");
  const om = u.mmap(ob.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, ob.offset);
  const cm = u.mmap(cb.length, PROT_READ, MAP_SHARED, fd, cb.offset);
  try {
    om.write(0, src);
    vidiocQbuf(u, fd, {
      index: 0,
      type: OUT,
      memory: MMAP,
      bytesused: o.sizeimage,
      timestampNs: 1_234_567_000,
    });
    vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP });
    vidiocStreamon(u, fd, OUT);
    vidiocStreamon(u, fd, CAP);
    const [rev] = u.poll([{ fd, events: POLLIN }], JOB_TIMEOUT_MS);
    assert.ok((rev ?? 0) & POLLIN, `no job finished within ${JOB_TIMEOUT_MS} ms`);
    const done = vidiocDqbuf(u, fd, CAP, MMAP);
    const srcDone = vidiocDqbuf(u, fd, OUT, MMAP);
    assert.equal(srcDone.index, 0);
    return { bytes: cm.read(0, c.sizeimage), done, cap: c };
  } finally {
    u.munmap(om);
    u.munmap(cm);
  }
}

export const vim2mCases: ConformanceCase[] = [
  {
    suite: "vim2m",
    name: "VIDIOC_QUERYCAP 'vim2m' with VIDEO_M2M | STREAMING; ENUM_FMT: OUTPUT RGB565, RGB565X, RGB24, BGR24, CAPTURE also YUYV and the four 8-bit Bayer orders (formats[] types); a new file's formats RGB565 640x480, 1280-byte lines, Rec. 709 (vim2m_open, vidioc_g_fmt)",
    needs: ["vim2m"],
    run: scoped((u, h) => {
      const fd = vim2m(u, h);
      const cap = vidiocQuerycap(u, fd);
      assert.deepEqual([cap.driver, cap.card, cap.busInfo], ["vim2m", "vim2m", "platform:vim2m"]);
      const bits =
        V4L2_CAP_VIDEO_M2M | V4L2_CAP_STREAMING | V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_OUTPUT;
      assert.equal(cap.deviceCaps & bits, V4L2_CAP_VIDEO_M2M | V4L2_CAP_STREAMING);
      const list = (type: number) => {
        const out: string[] = [];
        for (let i = 0; ; i++) {
          try {
            const f = vidiocEnumFmt(u, fd, type, i);
            out.push(`${fourccToString(f.pixelformat)}:${f.description}`);
          } catch (e) {
            assert.equal((e as { code?: string }).code, "EINVAL");
            return out;
          }
        }
      };
      const both = [
        "RGBP:16-bit RGB 5-6-5",
        "RGBR:16-bit RGB 5-6-5 BE",
        "RGB3:24-bit RGB 8-8-8",
        "BGR3:24-bit BGR 8-8-8",
      ];
      assert.deepEqual(list(OUT), both);
      assert.deepEqual(list(CAP), [
        ...both,
        "YUYV:YUYV 4:2:2",
        "BA81:8-bit Bayer BGBG/GRGR",
        "GBRG:8-bit Bayer GBGB/RGRG",
        "GRBG:8-bit Bayer GRGR/BGBG",
        "RGGB:8-bit Bayer RGRG/GBGB",
      ]);
      for (const type of [OUT, CAP]) {
        const f = vidiocGFmt(u, fd, type);
        assert.deepEqual(
          [
            f.width,
            f.height,
            fourccToString(f.pixelformat),
            f.field,
            f.bytesperline,
            f.sizeimage,
            f.colorspace,
          ],
          [640, 480, "RGBP", V4L2_FIELD_NONE, 1280, 614400, V4L2_COLORSPACE_REC709],
          `type ${type}`,
        );
      }
    }),
  },
  {
    suite: "vim2m",
    name: "TRY_FMT/S_FMT: sizes clamped to 32x32..640x480, widths even, Bayer heights even; bytesperline always width * depth / 8; an unknown fourcc becomes RGB565; a capture-only format on OUTPUT → EINVAL; S_FMT with buffers → EBUSY (vidioc_try_fmt, get_alignment, vidioc_s_fmt)",
    needs: ["vim2m"],
    run: scoped((u, h) => {
      const fd = vim2m(u, h);
      const t = (type: number, code: string, width: number, height: number, bytesperline = 0) =>
        vidiocTryFmt(u, fd, type, { width, height, pixelformat: fcc(code), bytesperline });
      const dims = (f: {
        width: number;
        height: number;
        bytesperline: number;
        sizeimage: number;
      }) => [f.width, f.height, f.bytesperline, f.sizeimage];
      assert.deepEqual(dims(t(OUT, "RGB3", 1000, 1000)), [640, 480, 1920, 921600]);
      assert.deepEqual(dims(t(OUT, "RGBP", 1, 1)), [32, 32, 64, 2048]);
      assert.deepEqual(dims(t(OUT, "RGB3", 101, 77, 5000)), [100, 77, 300, 23100]);
      assert.deepEqual(dims(t(CAP, "BA81", 101, 77)), [100, 76, 100, 7600]);
      assert.deepEqual(dims(t(CAP, "YUYV", 101, 77)), [100, 77, 200, 15400]);
      const unknown = t(OUT, "NOPE", 64, 48);
      assert.equal(fourccToString(unknown.pixelformat), "RGBP");
      expectErrno("EINVAL", () => t(OUT, "YUYV", 64, 48), "YUYV is capture only");
      expectErrno("EINVAL", () => t(OUT, "GRBG", 64, 48), "Bayer is capture only");
      const s = vidiocSFmt(u, fd, CAP, { width: 64, height: 48, pixelformat: fcc("BGR3") });
      assert.deepEqual(dims(s), [64, 48, 192, 9216]);
      assert.deepEqual(dims(vidiocGFmt(u, fd, CAP)), [64, 48, 192, 9216]);
      vidiocReqbufs(u, fd, { count: 1, type: CAP, memory: MMAP });
      expectErrno(
        "EBUSY",
        () => vidiocSFmt(u, fd, CAP, { width: 32, height: 32, pixelformat: fcc("BGR3") }),
        "buffers allocated",
      );
      vidiocSFmt(u, fd, OUT, { width: 32, height: 32, pixelformat: fcc("BGR3") });
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
    }),
  },
  {
    suite: "vim2m",
    name: "a job, same format and size: RGB24 64x48 in, the CAPTURE buffer holds the same bytes, bytesused = sizeimage, the OUTPUT timestamp copied (V4L2_BUF_FLAG_TIMESTAMP_COPY), sequence 0 (device_process fast path, v4l2_m2m_buf_copy_metadata)",
    needs: ["vim2m"],
    run: scoped((u, h) => {
      const fd = vim2m(u, h);
      const src = rgbPattern(64, 48);
      const fmt = { width: 64, height: 48, pixelformat: fcc("RGB3") };
      const { bytes, done } = runJob(u, fd, fmt, fmt, src);
      assert.equal(done.bytesused, src.length);
      assert.equal(done.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK, V4L2_BUF_FLAG_TIMESTAMP_COPY);
      assert.equal(done.timestampNs, 1_234_567_000);
      assert.equal(done.sequence, 0);
      assert.deepEqual(bytes, src, "a copy of the source");
    }),
  },
  {
    suite: "vim2m",
    name: "a converting, scaling job: RGB24 64x64 to YUYV 32x32, each pair the Bresenham scaler's two source pixels through vim2m's integer BT.601 (copy_two_pixels, device_process)",
    needs: ["vim2m"],
    run: scoped((u, h) => {
      const fd = vim2m(u, h);
      const src = rgbPattern(64, 64);
      const { bytes, done, cap } = runJob(
        u,
        fd,
        { width: 64, height: 64, pixelformat: fcc("RGB3") },
        { width: 32, height: 32, pixelformat: fcc("YUYV") },
        src,
      );
      assert.equal(done.bytesused, cap.sizeimage);
      assert.equal(cap.sizeimage, 32 * 32 * 2);
      // Worked out here from vim2m.c: x_int = 64 / 32 = 2, x_fract = 0, so pair k reads
      // source pixels 4k and 4k + 2 of line 2y.
      const want = new Uint8Array(cap.sizeimage);
      const px = (y: number, x: number) => {
        const o = (y * 64 + x) * 3;
        return [src[o]!, src[o + 1]!, src[o + 2]!] as const;
      };
      let o = 0;
      for (let y = 0; y < 32; y++) {
        for (let k = 0; k < 16; k++) {
          const [r, g, b] = px(2 * y, 4 * k);
          const [r1, g1, b1] = px(2 * y, 4 * k + 2);
          want[o++] = (8453 * r + 16594 * g + 3223 * b + 524288) >> 15;
          want[o++] = (-4878 * r - 9578 * g + 14456 * b + 4210688) >> 15;
          want[o++] = (8453 * r1 + 16594 * g1 + 3223 * b1 + 524288) >> 15;
          want[o++] = (14456 * r - 12105 * g - 2351 * b + 4210688) >> 15;
        }
      }
      assert.deepEqual(bytes, want);
    }),
  },
];
