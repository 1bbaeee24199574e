/**
 * vivid's video output node (drivers/media/test-drivers/vivid/vivid-vid-out.c and
 * vivid-kthread-out.c): once streaming, at each frame interval the device reads the
 * oldest OUTPUT buffer by DMA and completes it. What it read is kept for checks: the
 * CRC-32 of every frame and the bytes of the last one.
 */

import { KernelError } from "../../../../errno.js";
import { crc32 } from "../../../../lib/crc32.js";
import { SimulationError } from "../../../../machine/outcome.js";
import type { V4l2IoctlOps } from "../../v4l2-core/v4l2-ioctl.js";
import type { Vb2Buffer, Vb2Ops, Vb2Queue, Vb2QueueSetup } from "../../videobuf2/videobuf2-core.js";
import { VividStream } from "./vivid-vid-common.js";

/** One frame the output device consumed. */
export interface VividOutputFrame {
  readonly sequence: number;
  readonly index: number;
  readonly bytesused: number;
  readonly crc32: number;
  /** Virtual time the read finished. */
  readonly timeNs: number;
}

/** The output side of a vivid instance. */
export class VividOutput extends VividStream {
  readonly node = "output" as const;
  /** Every frame read since probe, oldest first. */
  readonly frames: VividOutputFrame[] = [];
  /** The bytes of the last frame read. */
  lastFrame: Uint8Array | undefined;
  /** The bytes of the most recent frames, by their index in `frames`. */
  readonly #recent = new Map<number, Uint8Array>();
  /** How many frames' bytes are kept for {@link frameBytes}. */
  static readonly KEEP_FRAMES = 8;

  /** One frame period: read the oldest buffer by DMA and complete it. */
  protected tick(seq: number): void {
    const vb = this.active.list.shift();
    if (vb === undefined) return;
    this.active.inFlight = vb;
    const bytes = vb.planePayload(0);
    const segs = vb.planes[0]!.mem!.dmaSegments();
    let data = new Uint8Array(0);
    this.device.submit(
      `output frame ${seq} from buffer ${vb.index}`,
      bytes,
      () => {
        data = this.device.readSegments(segs).slice(0, bytes);
      },
      () => {
        this.active.inFlight = undefined;
        this.lastFrame = data;
        this.#recent.set(this.frames.length, data);
        this.#recent.delete(this.frames.length - VividOutput.KEEP_FRAMES);
        this.frames.push({
          sequence: seq,
          index: vb.index,
          bytesused: bytes,
          crc32: crc32(data),
          timeNs: this.machine.clock.now,
        });
        vb.sequence = seq;
        vb.timestamp = this.machine.clock.now;
        vb.queue.bufferDone(vb, "done");
        this.frameClock.arm();
      },
    );
    if (this.active.list.length > 0) this.frameClock.arm();
  }

  /** The bytes of frame `n` (0 = the first frame read since probe), if still kept. */
  frameBytes(n: number): Uint8Array | undefined {
    return this.#recent.get(n);
  }

  /**
   * Runs the virtual clock until the device has read frame `n` (0-based since probe) and
   * returns its bytes. Throws a SimulationError when nothing scheduled can produce it (no buffer
   * queued, not streaming) or when the frame is older than the frames kept.
   */
  waitForFrame(n: number): Uint8Array {
    const ok = this.machine.clock.runUntilCondition(() => this.frames.length > n);
    if (!ok)
      throw new SimulationError(
        "would-block-forever",
        `vivid-out: frame ${n} never comes: nothing scheduled can ever produce it`,
      );
    const bytes = this.#recent.get(n);
    if (bytes === undefined) throw new RangeError(`vivid-out: frame ${n} is no longer kept`);
    return bytes;
  }

  /** vivid_vid_out_qops. */
  readonly qops: Vb2Ops = {
    queueSetup: (_q: Vb2Queue, setup: Vb2QueueSetup) => this.queueSetup(setup),
    bufPrepare: (vb: Vb2Buffer) => {
      // vid_out_buf_prepare(): the payload userspace gave (bytesused, 0 meaning the
      // whole plane) must hold a frame, after the plane's data_offset.
      const size = this.fmt.sizeimage + vb.planes[0]!.dataOffset;
      if (vb.planePayload(0) < size)
        throw new KernelError(
          "EINVAL",
          `vivid: the payload is too small for plane 0 (${vb.planePayload(0)} < ${size})`,
        );
    },
    bufQueue: (vb: Vb2Buffer) => this.bufQueue(vb),
    startStreaming: () => this.startStreaming(),
    stopStreaming: (q: Vb2Queue) => this.stopStreaming(q),
  };

  /** The output node's ioctls: like vivid, no S_PARM on the output (ENOTTY). */
  readonly ioctlOps: V4l2IoctlOps = this.formatIoctls();
}
