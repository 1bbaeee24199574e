/**
 * Frame CRCs in debugfs (drivers/gpu/drm/drm_debugfs_crc.c):
 * /sys/kernel/debug/dri/<minor>/crtc-<N>/crc/control takes a source name ("auto" lets
 * the driver choose; EBUSY while data is open), crc/data gives one line per frame:
 *
 *   sprintf("0x%08x", frame) then " 0x%08x" per CRC value, "\n", and the NUL —
 *   LINE_LEN(n) = 10 + 11 * n + 1 + 1 bytes per read(2), e.g. "0x0000002a 0x1c291ca3\n\0".
 *
 * Opening data on an atomic driver needs the CRTC active (EIO); it allocates the
 * 128-entry ring and calls the driver's set_crc_source; a read blocks for an entry (on
 * the virtual clock) or gives EAGAIN with O_NONBLOCK, and EINVAL when the buffer is
 * shorter than a line. drm_crtc_add_crc_entry drops entries when the ring is full
 * (ENOBUFS and one DRM_ERROR, reported to the checker once).
 */

import { KernelError } from "../../../errno.js";
import { O_NONBLOCK, POLLIN } from "../../../include/uapi/fcntl.js";
import { SimulationError } from "../../../machine/outcome.js";
import { File, type FileOperations, simpleReadFromBuffer } from "../../../vfs/file.js";
import type { DrmDevice } from "./drm-device.js";
import type { DrmCrtc } from "./drm-mode.js";

/** DRM_CRC_ENTRIES_NR. */
export const DRM_CRC_ENTRIES_NR = 128;
/** DRM_MAX_CRC_NR. */
export const DRM_MAX_CRC_NR = 10;
const POLLRDNORM = 0x40;

/** LINE_LEN(values_cnt): one crc/data line with its NUL. */
export function crcLineLen(valuesCnt: number): number {
  return 10 + 11 * valuesCnt + 1 + 1;
}

/** The text of one crc/data line, without the trailing NUL. */
export function formatCrcLine(frame: number | undefined, crcs: readonly number[]): string {
  const hex8 = (v: number): string => `0x${(v >>> 0).toString(16).padStart(8, "0")}`;
  return `${frame === undefined ? "XXXXXXXXXX" : hex8(frame)}${crcs.map((c) => ` ${hex8(c)}`).join("")}\n`;
}

/** What the CRTC's driver provides (verify_crc_source / set_crc_source / get_crc_sources). */
export interface DrmCrcSourceFuncs {
  /** Number of CRC values for `source`; throws EINVAL for an unknown source. */
  verifyCrcSource(crtc: DrmCrtc, source: string): number;
  /** Start (source) or stop (null) generating entries. */
  setCrcSource(crtc: DrmCrtc, source: string | null): void;
  readonly sources: readonly string[];
  /** crtc->state->active, checked at open for atomic drivers. */
  isActive(crtc: DrmCrtc): boolean;
}

interface CrcEntry {
  readonly frame: number | undefined;
  readonly crcs: readonly number[];
}

/** struct drm_crtc_crc: the control/data state of one CRTC. */
export class DrmCrtcCrc {
  /** crc->source: "auto" from drm_crtc_init on. */
  source = "auto";
  opened = false;
  valuesCnt = 0;
  #entries: CrcEntry[] = [];
  #overflow = false;
  readonly controlPath: string;
  readonly dataPath: string;

  constructor(
    readonly dev: DrmDevice,
    readonly crtc: DrmCrtc,
    readonly funcs: DrmCrcSourceFuncs,
  ) {
    const dir = `${dev.debugfsRoot}/crtc-${crtc.index}/crc`;
    this.controlPath = `${dir}/control`;
    this.dataPath = `${dir}/data`;
  }

  /** drm_debugfs_crtc_crc_add(): creates crc/control and crc/data. */
  register(): void {
    this.dev.host.addDevnode(
      this.controlPath,
      (flags) => new File(crcControlFops, { crc: this, pos: 0 }, flags, this.controlPath),
    );
    this.dev.host.addDevnode(this.dataPath, (flags) => this.#openData(flags));
  }

  get pending(): number {
    return this.#entries.length;
  }

  /** Drops the entries not read yet (what a reader that skips frames does by reading them). */
  discard(): void {
    this.#entries = [];
  }

  /** drm_crtc_add_crc_entry(): ENOBUFS (returned, not thrown) when the ring is full. */
  addEntry(frame: number | undefined, crcs: readonly number[]): number {
    if (!this.opened) return -22;
    if (this.#entries.length >= DRM_CRC_ENTRIES_NR - 1) {
      if (!this.#overflow) {
        const m = this.dev.host.machine;
        m.violations.report({
          kind: "api-misuse",
          api: "drm",
          time: m.now,
          agent: this.dev.driver.name,
          phys: -1,
          len: 0,
          message: "Overflow of CRC buffer, userspace reads too slow.",
          hint: `read ${this.dataPath} every frame (or poll it) while a CRC source is set`,
        });
      }
      this.#overflow = true;
      return -105;
    }
    this.#entries.push({ frame, crcs });
    this.dev.host.machine.clock.noteProgress();
    return 0;
  }

  #openData(flags: number): File {
    if (!this.funcs.isActive(this.crtc))
      throw new KernelError("EIO", `${this.dataPath}: the CRTC is not active`);
    const n = this.funcs.verifyCrcSource(this.crtc, this.source);
    if (n > DRM_MAX_CRC_NR || n === 0)
      throw new KernelError("EINVAL", `${this.dataPath}: ${n} CRC values`);
    if (this.opened) throw new KernelError("EBUSY", `${this.dataPath} is open already`);
    this.opened = true;
    this.valuesCnt = n;
    this.#entries = [];
    this.#overflow = false;
    try {
      this.funcs.setCrcSource(this.crtc, this.source);
    } catch (e) {
      this.opened = false;
      throw e;
    }
    return new File(crcDataFops, this, flags, this.dataPath);
  }

  /** crtc_crc_release(). */
  _release(): void {
    this.funcs.setCrcSource(this.crtc, null);
    this.opened = false;
    this.#entries = [];
    this.valuesCnt = 0;
    this.#overflow = false;
  }

  /** crtc_crc_read(). */
  _read(file: File, len: number): Uint8Array {
    if (this.#entries.length === 0) {
      if (file.flags & O_NONBLOCK) throw new KernelError("EAGAIN", `${this.dataPath}: no CRC yet`);
      const clock = this.dev.host.machine.clock;
      if (!clock.runUntilCondition(() => this.#entries.length > 0)) {
        throw new SimulationError(
          "would-block-forever",
          `read of ${this.dataPath} would block forever: no frame is being scanned out (is the CRTC on?)`,
        );
      }
    }
    const lineLen = crcLineLen(this.valuesCnt);
    if (len < lineLen)
      throw new KernelError(
        "EINVAL",
        `${this.dataPath}: read of ${len} bytes, a line is ${lineLen}`,
      );
    const e = this.#entries.shift()!;
    const out = new Uint8Array(lineLen);
    out.set(new TextEncoder().encode(formatCrcLine(e.frame, e.crcs)));
    return out;
  }

  /** crc_control_write(). */
  _writeControl(data: Uint8Array): number {
    if (data.length === 0) return 0;
    let source = new TextDecoder().decode(data);
    const nul = source.indexOf("\0");
    if (nul >= 0) source = source.slice(0, nul);
    if (source.endsWith("\n")) source = source.slice(0, -1);
    this.funcs.verifyCrcSource(this.crtc, source);
    if (this.opened) throw new KernelError("EBUSY", `${this.controlPath}: crc/data is open`);
    this.source = source;
    return data.length;
  }

  /** crc_control_show(). */
  _showControl(): string {
    return this.funcs.sources.map((s) => (s === this.source ? `${s}*\n` : `${s}\n`)).join("");
  }
}

const crcDataFops: FileOperations = {
  name: "drm_crtc_crc_data",
  release(file) {
    (file.privateData as DrmCrtcCrc)._release();
  },
  read(file, len) {
    return (file.privateData as DrmCrtcCrc)._read(file, len);
  },
  poll(file, events) {
    const crc = file.privateData as DrmCrtcCrc;
    return crc.pending > 0 ? (POLLIN | POLLRDNORM) & events : 0;
  },
};

interface ControlPriv {
  readonly crc: DrmCrtcCrc;
  pos: number;
}

const crcControlFops: FileOperations = {
  name: "drm_crtc_crc_control",
  read(file, len) {
    const p = file.privateData as ControlPriv;
    return simpleReadFromBuffer(p, new TextEncoder().encode(p.crc._showControl()), len);
  },
  write(file, data) {
    return (file.privateData as ControlPriv).crc._writeControl(data);
  },
};
