/**
 * vivid's formats and file I/O, as Linux 6.12 has them and the model must:
 *
 * - ENUM_FMT lists vivid_formats[] (drivers/media/test-drivers/vivid/vivid-vid-common.c)
 *   without the ten multi-planar formats on a single-planar device, with
 *   v4l_fill_fmtdesc()'s descriptions (drivers/media/v4l2-core/v4l2-ioctl.c) and, on
 *   the capture node, vivid_enum_fmt_vid()'s CSC flags. The expected list is the model's
 *   table (src/drivers/media/test-drivers/vivid/vivid-formats.ts): the Linux run is what
 *   checks it against the real driver, entry by entry.
 * - TRY_FMT/S_FMT compute bytesperline and sizeimage as vivid_try_fmt_vid_cap() and
 *   vivid_try_fmt_vid_out() do; the expected numbers below are worked out by hand from
 *   those functions, independently of the model's code.
 * - Capture streams in formats other than YUYV (the payload is the format's sizeimage).
 * - read()/write() through videobuf2's file I/O emulator (videobuf2-core.c
 *   __vb2_init_fileio, __vb2_perform_fileio; videobuf2-v4l2.c vb2_fop_read/write).
 * - The request API as far as the queues report it: V4L2_BUF_CAP_SUPPORTS_REQUESTS and
 *   QBUF's errnos with V4L2_BUF_FLAG_REQUEST_FD (videobuf2-v4l2.c
 *   vb2_queue_or_prepare_buf, drivers/media/mc/mc-request.c media_request_get_by_fd).
 */

import assert from "node:assert/strict";
import { VIVID_FORMATS } from "../../src/drivers/media/test-drivers/vivid/vivid-formats.js";
import {
  F_ADD_SEALS,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  O_NONBLOCK,
  O_RDWR,
  POLLIN,
  POLLOUT,
  PROT_READ,
  PROT_WRITE,
} from "../../src/include/uapi/fcntl.js";
import {
  V4L2_BUF_CAP_SUPPORTS_REQUESTS,
  V4L2_BUF_FLAG_REQUEST_FD,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_CAP_READWRITE,
  V4L2_COLORSPACE_SMPTE170M,
  V4L2_COLORSPACE_SRGB,
  V4L2_FIELD_ALTERNATE,
  V4L2_FIELD_INTERLACED,
  V4L2_FIELD_INTERLACED_BT,
  V4L2_FIELD_NONE,
  V4L2_FMT_FLAG_CSC_COLORSPACE,
  V4L2_FMT_FLAG_CSC_HSV_ENC,
  V4L2_FMT_FLAG_CSC_QUANTIZATION,
  V4L2_FMT_FLAG_CSC_XFER_FUNC,
  V4L2_FMT_FLAG_CSC_YCBCR_ENC,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_MMAP,
  V4L2_PIX_FMT_YUYV,
} from "../../src/include/uapi/videodev2.js";
import { udmabufCreate } from "../../src/uapi/lib.js";
import type { Uapi } from "../../src/uapi/uapi.js";
import {
  fourccToString,
  v4l2Fourcc,
  vidiocDqbuf,
  vidiocEnumFmt,
  vidiocEnumFrameintervals,
  vidiocEnumFramesizes,
  vidiocGParm,
  vidiocQbuf,
  vidiocQuerybuf,
  vidiocQuerycap,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocSParm,
  vidiocStreamoff,
  vidiocStreamon,
  vidiocTryFmt,
} from "../../src/uapi/v4l2.js";
import { expectErrno, type Fds, scoped } from "./case-helpers.js";
// Types only: suite.ts imports this module, so a value import back would be a cycle.
import type { ConformanceCase } from "./suite.js";
import { openVivid, VIVID_CAPTURE, VIVID_OUTPUT } from "./vivid-cases.js";

const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
const OUT = V4L2_BUF_TYPE_VIDEO_OUTPUT;
const MMAP = V4L2_MEMORY_MMAP;
const FRAME_TIMEOUT_MS = 10_000;
const fcc = v4l2Fourcc;

function node(u: Uapi, h: Fds, path: string, flags = O_RDWR): number {
  const fd = openVivid(u, path, flags);
  assert.ok(fd >= 0, `no vivid at ${path}`);
  return h.add(fd);
}

/** Every format ENUM_FMT gives for `type`, until EINVAL. */
function enumAll(u: Uapi, fd: number, type: number) {
  const out = [];
  for (let i = 0; i < 200; i++) {
    try {
      out.push(vidiocEnumFmt(u, fd, type, i));
    } catch (e) {
      assert.equal((e as { code?: string }).code, "EINVAL", `ENUM_FMT ${i}`);
      return out;
    }
  }
  assert.fail("ENUM_FMT never ended");
}

/** The capture format set to a fresh 640x480 YUYV with nothing allocated. */
function vgaYuyv(u: Uapi, fd: number, type: number): void {
  vidiocSFmt(u, fd, type, { width: 640, height: 480, pixelformat: V4L2_PIX_FMT_YUYV });
}

/** read(2) of the whole of `len` bytes, in as many calls as the emulator needs (one frame's payload at most each). */
function readSome(u: Uapi, fd: number, len: number): Uint8Array {
  const got = u.read(fd, len);
  assert.ok(got.length > 0 && got.length <= len, `read gave ${got.length}`);
  return got;
}

export const vividFormatCases: ConformanceCase[] = [
  {
    suite: "vivid",
    name: "ENUM_FMT: the 83 single-planar formats of vivid_formats[] in order (the 10 multi-planar ones only on a multiplanar device), v4l_fill_fmtdesc's descriptions, CSC flags on capture by colour encoding, none on output; one past the end → EINVAL (vivid_enum_fmt_vid)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const cap = enumAll(u, node(u, h, VIVID_CAPTURE), CAP);
      const out = enumAll(u, node(u, h, VIVID_OUTPUT), OUT);
      assert.equal(cap.length, 83);
      assert.equal(out.length, 83);
      const base = V4L2_FMT_FLAG_CSC_COLORSPACE | V4L2_FMT_FLAG_CSC_XFER_FUNC;
      for (let i = 0; i < 83; i++) {
        const want = VIVID_FORMATS[i]!;
        const c = cap[i]!;
        const name = `${i} ${fourccToString(c.pixelformat)}`;
        assert.equal(fourccToString(c.pixelformat), fourccToString(want.fourcc), name);
        assert.equal(c.pixelformat, want.fourcc, `${name}: big-endian bit`);
        assert.equal(c.description, want.description, name);
        assert.equal(out[i]!.pixelformat, want.fourcc, `output ${name}`);
        assert.equal(out[i]!.flags, 0, `output ${name} flags`);
        assert.equal(out[i]!.description, want.description, `output ${name}`);
        assert.equal(c.flags & base, base, `${name} flags 0x${c.flags.toString(16)}`);
      }
      // Spot checks written from vivid_enum_fmt_vid: YCbCr, HSV, RGB, luma; YUV555 has
      // no color_enc in vivid_formats[], which makes it RGB.
      const flagsOf = (code: string) => cap.find((f) => f.pixelformat === fcc(code))!.flags;
      assert.equal(
        flagsOf("NV12"),
        base | V4L2_FMT_FLAG_CSC_YCBCR_ENC | V4L2_FMT_FLAG_CSC_QUANTIZATION,
      );
      assert.equal(flagsOf("HSV4"), base | V4L2_FMT_FLAG_CSC_HSV_ENC);
      assert.equal(flagsOf("RGB3"), base | V4L2_FMT_FLAG_CSC_QUANTIZATION);
      assert.equal(flagsOf("GREY"), base);
      assert.equal(flagsOf("YUVO"), base | V4L2_FMT_FLAG_CSC_QUANTIZATION);
      assert.deepEqual(
        [cap[0]!.description, cap[7]!.description, cap[82]!.description],
        ["YUYV 4:2:2", "Y/UV 4:2:0", "32-bit XHSV 8-8-8-8"],
      );
      assert.ok(
        !cap.some((f) => f.pixelformat === fcc("NM12")),
        "NV12M needs a multiplanar device",
      );
    }),
  },
  {
    suite: "vivid",
    name: "TRY_FMT on capture: every format keeps its fourcc at the nearest webcam size with bytesperline = width * bit_depth[0] / 8 and sizeimage with its chroma planes (NV12 640x480: 640 and 460800; YUV420 the same; NV24 921600; 422P 614400; RGB24 1920; Y10 1280); a larger bytesperline is kept, past 16384 pixels clamped; an unknown fourcc gives YUYV (vivid_try_fmt_vid_cap)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = node(u, h, VIVID_CAPTURE);
      const tf = (code: string | number, bytesperline = 0, width = 641, height = 479) =>
        vidiocTryFmt(u, fd, CAP, {
          width,
          height,
          pixelformat: typeof code === "number" ? code : fcc(code),
          bytesperline,
        });
      for (const f of enumAll(u, fd, CAP)) {
        const t = tf(f.pixelformat);
        const name = fourccToString(f.pixelformat);
        assert.equal(t.pixelformat, f.pixelformat, name);
        assert.deepEqual([t.width, t.height, t.field], [640, 480, V4L2_FIELD_NONE], name);
        assert.equal(t.colorspace, V4L2_COLORSPACE_SRGB, `${name} colorspace`);
      }
      // [fourcc, bytesperline, sizeimage] at 640x480, from vivid_try_fmt_vid_cap's arithmetic.
      const table: [string, number, number][] = [
        ["YUYV", 1280, 614400],
        ["UYVY", 1280, 614400],
        ["NV12", 640, 460800],
        ["NV21", 640, 460800],
        ["YU12", 640, 460800],
        ["YV12", 640, 460800],
        ["NV16", 640, 614400],
        ["NV24", 640, 921600],
        ["422P", 640, 614400],
        ["RGB3", 1920, 921600],
        ["BGR3", 1920, 921600],
        ["RGBP", 1280, 614400],
        ["RGB1", 640, 307200],
        ["XR24", 2560, 1228800],
        ["BGRH", 2560, 1228800],
        ["GREY", 640, 307200],
        ["Y10 ", 1280, 614400],
        ["BA81", 640, 307200],
        ["BG10", 1280, 614400],
        ["HSV3", 1920, 921600],
        ["HSV4", 2560, 1228800],
        ["YUV4", 2560, 1228800],
      ];
      for (const [code, bpl, size] of table) {
        const t = tf(code);
        assert.deepEqual([t.bytesperline, t.sizeimage], [bpl, size], code);
      }
      // Padded lines are kept and the chroma planes grow with them.
      assert.deepEqual([tf("NV12", 700).bytesperline, tf("NV12", 700).sizeimage], [700, 504000]);
      assert.deepEqual([tf("YUYV", 2000).bytesperline, tf("YUYV", 2000).sizeimage], [2000, 960000]);
      // MAX_ZOOM * MAX_WIDTH pixels: 16384 * 3 bytes for RGB24.
      assert.equal(tf("RGB3", 100000).bytesperline, 49152);
      const y = tf(fcc("NOPE"));
      assert.deepEqual([y.pixelformat, y.bytesperline], [V4L2_PIX_FMT_YUYV, 1280]);
      // 320x180 NV12: 180 is even, so nothing to round; 90 chroma lines.
      const small = tf("NV12", 0, 330, 170);
      assert.deepEqual([small.width, small.height, small.sizeimage], [320, 180, 86400]);
    }),
  },
  {
    suite: "vivid",
    name: "TRY_FMT/S_FMT on output (the S-Video output with scaler, crop and compose): any size from 16x16 to 16384x8640 kept, field INTERLACED unless an interlaced order or ALTERNATE (height halved), SMPTE 170M, no rounding to the chroma subsampling (vivid_try_fmt_vid_out, vivid_field_out)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = node(u, h, VIVID_OUTPUT);
      const tf = (
        code: string,
        width: number,
        height: number,
        field = V4L2_FIELD_NONE,
        bytesperline = 0,
      ) => vidiocTryFmt(u, fd, OUT, { width, height, pixelformat: fcc(code), field, bytesperline });
      const a = tf("YUYV", 641, 479);
      assert.deepEqual(
        [a.width, a.height, a.field, a.bytesperline, a.sizeimage, a.colorspace],
        [641, 479, V4L2_FIELD_INTERLACED, 1282, 1282 * 479, V4L2_COLORSPACE_SMPTE170M],
      );
      const tiny = tf("YUYV", 8, 8);
      assert.deepEqual([tiny.width, tiny.height], [16, 16]);
      const huge = tf("GREY", 20000, 9000);
      assert.deepEqual([huge.width, huge.height, huge.bytesperline], [16384, 8640, 16384]);
      assert.equal(tf("YUYV", 640, 480, V4L2_FIELD_INTERLACED_BT).field, V4L2_FIELD_INTERLACED_BT);
      const alt = tf("YUYV", 640, 480, V4L2_FIELD_ALTERNATE);
      assert.deepEqual([alt.field, alt.height], [V4L2_FIELD_ALTERNATE, 480]);
      const altBig = tf("YUYV", 640, 5000, V4L2_FIELD_ALTERNATE);
      assert.equal(altBig.height, 4320, "8640 lines of fields hold 4320 per field");
      // NV12 at an odd height: sizeimage = 641 * 479 + 641 * 479 * 4 / 8, rounded down.
      const nv = tf("NV12", 641, 479);
      assert.deepEqual([nv.height, nv.bytesperline, nv.sizeimage], [479, 641, 460558]);
      const s = vidiocSFmt(u, fd, OUT, { width: 800, height: 600, pixelformat: fcc("RGB3") });
      assert.deepEqual([s.width, s.height, s.bytesperline, s.sizeimage], [800, 600, 2400, 1440000]);
      vidiocSFmt(u, fd, OUT, { width: 640, height: 480, pixelformat: V4L2_PIX_FMT_YUYV });
    }),
  },
  {
    suite: "vivid",
    name: "capture streams NV12 and RGB24: QUERYBUF's length is sizeimage and each frame's bytesused the whole sizeimage (vid_cap_queue_setup, vid_cap_buf_prepare)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = node(u, h, VIVID_CAPTURE);
      for (const [code, size] of [
        ["NV12", 460800],
        ["RGB3", 921600],
      ] as const) {
        const f = vidiocSFmt(u, fd, CAP, { width: 640, height: 480, pixelformat: fcc(code) });
        assert.equal(f.sizeimage, size, code);
        assert.equal(vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: MMAP }).count, 2);
        assert.equal(vidiocQuerybuf(u, fd, CAP, MMAP, 0).length, size, `${code} length`);
        vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP });
        vidiocQbuf(u, fd, { index: 1, type: CAP, memory: MMAP });
        vidiocStreamon(u, fd, CAP);
        const [rev] = u.poll([{ fd, events: POLLIN }], FRAME_TIMEOUT_MS);
        assert.ok((rev ?? 0) & POLLIN, `${code}: no frame`);
        const b = vidiocDqbuf(u, fd, CAP, MMAP);
        assert.equal(b.bytesused, size, `${code} bytesused`);
        vidiocStreamoff(u, fd, CAP);
        vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
      }
      vgaYuyv(u, fd, CAP);
    }),
  },
  {
    suite: "vivid",
    name: "read(): V4L2_CAP_READWRITE on both nodes; read() starts the emulator with min_reqbufs_allocation buffers and returns one frame at most per call (a short read finishes the frame); meanwhile REQBUFS, QBUF, STREAMON → EBUSY and another file's read → EBUSY; O_NONBLOCK before a frame → EAGAIN; closing the reader frees the queue (vb2_fop_read, __vb2_init_fileio, __vb2_perform_fileio, vb2_verify_memory_type)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = node(u, h, VIVID_CAPTURE);
      assert.ok(vidiocQuerycap(u, fd).deviceCaps & V4L2_CAP_READWRITE, "capture READWRITE");
      const out = node(u, h, VIVID_OUTPUT);
      assert.ok(vidiocQuerycap(u, out).deviceCaps & V4L2_CAP_READWRITE, "output READWRITE");
      vgaYuyv(u, fd, CAP);
      const size = 640 * 480 * 2;
      const first = u.read(fd, size + 4096);
      assert.equal(first.length, size, "one whole frame, not more");
      const a = readSome(u, fd, 300000);
      assert.equal(a.length, 300000);
      const b = u.read(fd, size);
      assert.equal(b.length, size - 300000, "the rest of that frame only");
      expectErrno(
        "EBUSY",
        () => vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: MMAP }),
        "REQBUFS",
      );
      expectErrno("EBUSY", () => vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP }), "QBUF");
      expectErrno("EBUSY", () => vidiocStreamon(u, fd, CAP), "STREAMON");
      assert.equal(
        vidiocQuerybuf(u, fd, CAP, MMAP, 1).index,
        1,
        "the emulator's buffers can be queried",
      );
      expectErrno(
        "EINVAL",
        () => vidiocQuerybuf(u, fd, CAP, MMAP, 2),
        "min_reqbufs_allocation is 2",
      );
      const other = node(u, h, VIVID_CAPTURE);
      expectErrno("EBUSY", () => u.read(other, size), "read on another file");
      h.close(fd);
      // The reader's close released the queue: streaming ioctls work on the other file.
      assert.equal(vidiocReqbufs(u, other, { count: 2, type: CAP, memory: MMAP }).count, 2);
      vidiocReqbufs(u, other, { count: 0, type: CAP, memory: MMAP });
      h.close(other);
      const nb = node(u, h, VIVID_CAPTURE, O_RDWR | O_NONBLOCK);
      expectErrno("EAGAIN", () => u.read(nb, size), "nothing captured yet");
      const [rev] = u.poll([{ fd: nb, events: POLLIN }], FRAME_TIMEOUT_MS);
      assert.ok((rev ?? 0) & POLLIN, "a frame comes");
      assert.equal(u.read(nb, size).length, size);
    }),
  },
  {
    suite: "vivid",
    name: "write(): poll(POLLOUT) on an output queue without buffers starts the emulator (POLLOUT at once) and REQBUFS → EBUSY; a short write is taken; the write that fills the buffer → EINVAL, because __prepare_mmap copies the V4L2 buffer's bytesused (never set by a QBUF, so 0) over the written length and vivid refuses a payload below a frame (vb2_core_poll, __vb2_perform_fileio, __fill_vb2_buffer, vid_out_buf_prepare)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const out = node(u, h, VIVID_OUTPUT);
      vgaYuyv(u, out, OUT);
      const size = 640 * 480 * 2;
      const frame = new Uint8Array(size + 100).fill(0x80);
      const [rev] = u.poll([{ fd: out, events: POLLOUT }], 0);
      assert.equal((rev ?? 0) & POLLOUT, POLLOUT, "poll starts write() at once");
      expectErrno(
        "EBUSY",
        () => vidiocReqbufs(u, out, { count: 2, type: OUT, memory: MMAP }),
        "REQBUFS",
      );
      assert.equal(u.write(out, frame.subarray(0, 1000)), 1000, "part of a frame");
      expectErrno("EINVAL", () => u.write(out, frame), "the buffer's queueing fails");
    }),
  },
  {
    suite: "vivid",
    name: "requests: REQBUFS reports V4L2_BUF_CAP_SUPPORTS_REQUESTS on both queues (supports_requests=1); QBUF with V4L2_BUF_FLAG_REQUEST_FD and a request_fd that is not a media request (-1, a memfd) → EINVAL; once a buffer was queued without one → EBUSY; a queued buffer → EINVAL (vb2_queue_or_prepare_buf, media_request_get_by_fd)",
    needs: ["vivid", "memfd"],
    run: scoped((u, h) => {
      const fd = node(u, h, VIVID_CAPTURE);
      vgaYuyv(u, fd, CAP);
      const r = vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: MMAP });
      assert.ok(
        r.capabilities & V4L2_BUF_CAP_SUPPORTS_REQUESTS,
        `capture caps 0x${r.capabilities.toString(16)}`,
      );
      const out = node(u, h, VIVID_OUTPUT);
      vgaYuyv(u, out, OUT);
      const o = vidiocReqbufs(u, out, { count: 0, type: OUT, memory: MMAP });
      assert.ok(o.capabilities & V4L2_BUF_CAP_SUPPORTS_REQUESTS, "output caps");
      const memfd = h.add(u.memfdCreate("not-a-request", 0));
      const withReq = (index: number, requestFd: number) =>
        vidiocQbuf(u, fd, {
          index,
          type: CAP,
          memory: MMAP,
          flags: V4L2_BUF_FLAG_REQUEST_FD,
          requestFd,
        });
      expectErrno("EINVAL", () => withReq(0, -1), "request_fd -1");
      expectErrno("EINVAL", () => withReq(0, memfd), "a memfd");
      vidiocQbuf(u, fd, { index: 0, type: CAP, memory: MMAP });
      expectErrno("EINVAL", () => withReq(0, memfd), "buffer 0 is queued");
      expectErrno("EBUSY", () => withReq(1, memfd), "the queue took a buffer without a request");
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: MMAP });
    }),
  },
  {
    suite: "vivid",
    name: "udmabuf end to end: 1 MiB of a hugetlb memfd (one 2 MiB folio, so physically contiguous) as a udmabuf, imported by vivid's dma-contig capture queue (the VM's: 32-bit DMA mask) as a DMABUF buffer; udmabuf's per-page scatterlist maps page by page and dma-contig finds it contiguous; the frame is in the memfd's pages once REQBUFS(0) unmapped it (udmabuf.c get_sg_table, videobuf2-dma-contig.c vb2_dc_map_dmabuf, vb2_dc_get_contiguous_size, videobuf2-core.c __vb2_plane_dmabuf_put)",
    needs: ["vivid", "udmabuf", "hugetlb"],
    run: scoped((u, h) => {
      const HPAGE = 2 * 1024 * 1024;
      const MIB = 1024 * 1024;
      const memfd = h.add(u.memfdCreate("conf-udmabuf-vivid", MFD_ALLOW_SEALING | 0x0004));
      u.ftruncate(memfd, HPAGE);
      u.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK);
      const view = u.mmap(HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
      try {
        view.fill(0, MIB, 0);
        const dev = h.add(u.open("/dev/udmabuf", O_RDWR));
        const dbuf = h.add(udmabufCreate(u, dev, memfd, 0, MIB));
        const fd = node(u, h, VIVID_CAPTURE);
        const f = vidiocSFmt(u, fd, CAP, {
          width: 640,
          height: 480,
          pixelformat: V4L2_PIX_FMT_YUYV,
        });
        assert.equal(
          vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: V4L2_MEMORY_DMABUF }).count,
          2,
        );
        const q = vidiocQbuf(u, fd, { index: 0, type: CAP, memory: V4L2_MEMORY_DMABUF, fd: dbuf });
        assert.equal(q.length, MIB, "the plane is the udmabuf's size");
        vidiocStreamon(u, fd, CAP);
        const [rev] = u.poll([{ fd, events: POLLIN }], FRAME_TIMEOUT_MS);
        assert.ok((rev ?? 0) & POLLIN, "no frame");
        const b = vidiocDqbuf(u, fd, CAP, V4L2_MEMORY_DMABUF);
        assert.equal(b.bytesused, f.sizeimage);
        vidiocStreamoff(u, fd, CAP);
        // vb2 keeps an imported dma-buf mapped after DQBUF (6.12 unmaps it only when the
        // plane lets go of it): REQBUFS(0) unmaps it, which hands the pages to the CPU
        // (dma_unmap_sgtable invalidates them on a non-coherent machine).
        vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: V4L2_MEMORY_DMABUF });
        const frame = view.read(0, f.sizeimage);
        assert.ok(
          frame.some((x) => x !== 0),
          "the captured frame is in the memfd (the test pattern is never all zeros)",
        );
        assert.ok(
          view.read(f.sizeimage, MIB - f.sizeimage).every((x) => x === 0),
          "nothing past the frame",
        );
      } finally {
        u.munmap(view);
      }
    }),
  },
  {
    suite: "vivid",
    name: "S_PARM on the webcam: the longest of webcam_intervals[] not longer than asked, among those the size allows (60 fps from 720p, 30 from 1080p, 15 from 2160p); denominator 0 → the fastest allowed; S_FMT clamps the interval with the previous size's limit (vivid_vid_cap_s_parm, webcam_ival_count, vivid_s_fmt_vid_cap)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = node(u, h, VIVID_CAPTURE);
      const size = (width: number, height: number) =>
        vidiocSFmt(u, fd, CAP, { width, height, pixelformat: V4L2_PIX_FMT_YUYV });
      const parm = (numerator: number, denominator: number) => {
        const r = vidiocSParm(u, fd, CAP, { numerator, denominator });
        return `${r.numerator}/${r.denominator}`;
      };
      size(640, 480);
      assert.equal(parm(1, 30), "1/30");
      assert.equal(parm(1, 100), "1/120");
      assert.equal(parm(1, 35), "1/40");
      assert.equal(parm(9, 10), "1/2");
      assert.equal(parm(3, 1), "1/1");
      assert.equal(parm(1, 0), "1/120");
      const g = vidiocGParm(u, fd, CAP);
      assert.deepEqual([g.numerator, g.denominator, g.capability, g.buffers], [1, 120, 0x1000, 1]);
      size(1280, 720);
      // S_FMT clamped with 640x480's limit (all 13): 1/120 stays.
      assert.equal(
        `${vidiocGParm(u, fd, CAP).numerator}/${vidiocGParm(u, fd, CAP).denominator}`,
        "1/120",
      );
      assert.equal(parm(1, 120), "1/60");
      size(1920, 1080);
      // 720p's limit (12) keeps 1/60.
      assert.equal(vidiocGParm(u, fd, CAP).denominator, 60);
      assert.equal(parm(1, 60), "1/30");
      size(3840, 2160);
      assert.equal(vidiocGParm(u, fd, CAP).denominator, 30, "1080p's limit (9) keeps 1/30");
      assert.equal(parm(1, 30), "1/15");
      size(640, 480);
      assert.equal(vidiocGParm(u, fd, CAP).denominator, 15);
      parm(1, 30);
    }),
  },
  {
    suite: "vivid",
    name: "ENUM_FRAMESIZES / ENUM_FRAMEINTERVALS on the webcam: the six discrete webcam_sizes[]; per size the first webcam_ival_count() of webcam_intervals[] (13, 12 from 720p, 9 from 1080p, 7 from 2160p); an unknown format, a size that is not a webcam size or an index past the end → EINVAL (vidioc_enum_framesizes, vidioc_enum_frameintervals)",
    needs: ["vivid"],
    run: scoped((u, h) => {
      const fd = node(u, h, VIVID_CAPTURE);
      const sizes: string[] = [];
      for (let i = 0; i < 6; i++) {
        const f = vidiocEnumFramesizes(u, fd, fcc("NV12"), i);
        assert.equal(f.type, 1, "V4L2_FRMSIZE_TYPE_DISCRETE");
        sizes.push(`${f.values[0]}x${f.values[1]}`);
      }
      assert.deepEqual(sizes, [
        "320x180",
        "640x360",
        "640x480",
        "1280x720",
        "1920x1080",
        "3840x2160",
      ]);
      expectErrno("EINVAL", () => vidiocEnumFramesizes(u, fd, fcc("NV12"), 6), "index 6");
      expectErrno("EINVAL", () => vidiocEnumFramesizes(u, fd, fcc("NOPE"), 0), "unknown format");
      expectErrno(
        "EINVAL",
        () => vidiocEnumFramesizes(u, fd, fcc("NM12"), 0),
        "multi-planar format",
      );
      const count = (width: number, height: number): number => {
        let n = 0;
        for (;;) {
          try {
            const iv = vidiocEnumFrameintervals(u, fd, {
              pixelformat: V4L2_PIX_FMT_YUYV,
              width,
              height,
              index: n,
            });
            assert.equal(iv.type, 1);
            if (n === 0) assert.deepEqual([iv.numerator, iv.denominator], [1, 1]);
            n++;
          } catch (e) {
            assert.equal((e as { code?: string }).code, "EINVAL");
            return n;
          }
        }
      };
      assert.deepEqual(
        [count(320, 180), count(640, 480), count(1280, 720), count(1920, 1080), count(3840, 2160)],
        [13, 13, 12, 9, 7],
      );
      assert.equal(count(641, 480), 0, "not a webcam size");
      const last = vidiocEnumFrameintervals(u, fd, {
        pixelformat: V4L2_PIX_FMT_YUYV,
        width: 640,
        height: 480,
        index: 12,
      });
      assert.deepEqual([last.numerator, last.denominator], [1, 120]);
    }),
  },
];
