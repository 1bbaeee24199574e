/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) as lib/crc32.c computes it.
 *
 * `crc32Le` is the kernel's crc32_le(): no inversion on the way in or out, so callers
 * chain it and choose their own seed. `crc32` is the usual zlib/Ethernet CRC-32,
 * ~crc32_le(~0, p, len). The display's frame CRC (drm_debugfs_crc.c's crc/data) and the
 * pipelines' expected CRCs both use it, so a frame the display read matches the frame
 * userspace meant if and only if the bytes agree.
 *
 * Node's native zlib.crc32 (Node 20.15 and later) does the work: it runs at several
 * GB/s, where JavaScript reaches a few hundred MB/s, and every displayed frame is
 * hashed (a 32 MiB frame at every vblank). package.json allows Node 20.0, so a
 * slicing-by-8 implementation over eight 256-entry tables stays as the fallback for
 * Node 20.0-20.14, and the tests compare the two.
 */

import * as zlib from "node:zlib";
import { sameBytesIn } from "./bytes.js";

type NativeCrc32 = (data: Uint8Array, value?: number) => number;
/** zlib.crc32 where this Node has it (typed loosely: @types/node 20 may predate it). */
const nativeCrc32: NativeCrc32 | undefined = (zlib as unknown as { crc32?: NativeCrc32 }).crc32;

const POLY = 0xedb88320;

/** T[k][b]: the CRC of byte b followed by k zero bytes (slicing-by-8 tables). */
const T: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = tables[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t0[n]!;
    for (let k = 1; k < 8; k++) {
      c = t0[c & 0xff]! ^ (c >>> 8);
      tables[k]![n] = c >>> 0;
    }
  }
  return tables;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = T as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/** crc32_le(seed, p, len) of lib/crc32.c: the reflected CRC without pre/post inversion. */
export function crc32Le(seed: number, bytes: Uint8Array): number {
  // zlib's crc32(data, prev) is ~crc32_le(~prev, data). (With no bytes zlib answers 0
  // rather than prev, so the empty case is answered here.)
  if (bytes.length === 0) return seed >>> 0;
  if (nativeCrc32 !== undefined) return ~nativeCrc32(bytes, ~seed >>> 0) >>> 0;
  return crc32LeJs(seed, bytes);
}

/** The JavaScript crc32_le (slicing-by-8), for Node without zlib.crc32 and for the tests. */
export function crc32LeJs(seed: number, bytes: Uint8Array): number {
  let crc = seed >>> 0;
  const n = bytes.length;
  let i = 0;
  const end8 = n - (n % 8);
  while (i < end8) {
    const a =
      (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>>
      0;
    crc =
      T7[a & 0xff]! ^
      T6[(a >>> 8) & 0xff]! ^
      T5[(a >>> 16) & 0xff]! ^
      T4[a >>> 24]! ^
      T3[bytes[i + 4]!]! ^
      T2[bytes[i + 5]!]! ^
      T1[bytes[i + 6]!]! ^
      T0[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < n) crc = T0[(crc ^ bytes[i++]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

/** The IEEE CRC-32 of `bytes` (zlib's crc32, cksum -o 3): ~crc32_le(~0, bytes). */
export function crc32(bytes: Uint8Array): number {
  if (nativeCrc32 !== undefined) return nativeCrc32(bytes, 0) >>> 0;
  return ~crc32LeJs(0xffffffff, bytes) >>> 0;
}

// ---------------------------------------------------------------------------------------
// Frames of rows: identical rows hashed once

/**
 * The crc32_le register after `n` zero bytes, as four 256-entry tables (one per byte of
 * the register): the operator is linear over GF(2), so Z(r) = Z0[r & 0xff] ^ Z1[..] ^ ...
 * Built as zlib's crc32_combine builds its operator: the one-zero-bit matrix squared up
 * to the bits of 8n.
 */
function zeroOperator(n: number): Uint32Array {
  // A 32x32 matrix over GF(2) as 32 columns: column i is the image of bit i.
  const times = (m: Uint32Array, v: number): number => {
    let r = 0;
    for (let i = 0; v !== 0; i++, v >>>= 1) if (v & 1) r ^= m[i]!;
    return r >>> 0;
  };
  const square = (m: Uint32Array): Uint32Array => {
    const out = new Uint32Array(32);
    for (let i = 0; i < 32; i++) out[i] = times(m, m[i]!);
    return out;
  };
  // One zero bit: shift right, XOR the polynomial when the low bit falls out.
  let op: Uint32Array = new Uint32Array(32);
  op[0] = POLY;
  for (let i = 1; i < 32; i++) op[i] = (1 << (i - 1)) >>> 0;
  // Identity, then multiply in op^(2^k) for every bit k of 8n.
  let acc: Uint32Array | undefined;
  for (let bits = n * 8; bits > 0; bits = Math.floor(bits / 2)) {
    if (bits % 2 === 1) {
      if (acc === undefined) acc = op.slice();
      else {
        const a: Uint32Array = acc;
        acc = new Uint32Array(32).map((_, i) => times(op, a[i]!));
      }
    }
    op = square(op);
  }
  const tables = new Uint32Array(4 * 256);
  for (let b = 0; b < 4; b++)
    for (let v = 0; v < 256; v++)
      tables[b * 256 + v] = acc === undefined ? (v << (8 * b)) >>> 0 : times(acc, v << (8 * b));
  return tables;
}

/** Zero operators by length, the most recent few (a frame geometry uses one or two). */
const zeroOps = new Map<number, Uint32Array>();

function zeroOperatorCached(n: number): Uint32Array {
  let z = zeroOps.get(n);
  if (z === undefined) {
    z = zeroOperator(n);
    if (zeroOps.size >= 8) zeroOps.delete(zeroOps.keys().next().value!);
    zeroOps.set(n, z);
  }
  return z;
}

/**
 * The IEEE CRC-32 of rows of `rowBytes` bytes given one at a time, wherever each lies
 * (a display hashing the rows it reads where they lie in DRAM): exactly {@link crc32}
 * of the rows packed together. A row equal to the one before it (a frame of colour
 * bars is mostly such rows) is not hashed again: the host compares it with its
 * predecessor, which must still hold its bytes, and the CRC is extended by the
 * predecessor's CRC through the combine operator, as zlib's crc32_combine:
 * crc(A || B) = Z_|B|(crc(A)) ^ crc_le(0, B).
 */
export class Crc32RowHasher {
  readonly #z: Uint32Array;
  /** The crc32_le register over the bytes so far (seeded with ~0). */
  #r = 0xffffffff;
  /** crc_le(0, previous row), and where that row lies. */
  #rowCrc = 0;
  #prev: Uint8Array | undefined;
  #prevOff = 0;

  constructor(readonly rowBytes: number) {
    this.#z = zeroOperatorCached(rowBytes);
  }

  /**
   * Extends the CRC by the row `bytes[off..off+rowBytes)`. `same`: the caller knows the
   * row equal to the one before it (DRAM's note of the write that put it there), so it
   * is not compared either.
   */
  row(bytes: Uint8Array, off: number, same = false): void {
    const n = this.rowBytes;
    const prev = this.#prev;
    if (prev === undefined || !(same || sameBytesIn(bytes, off, prev, this.#prevOff, n)))
      this.#rowCrc = crc32Le(0, bytes.subarray(off, off + n));
    this.#prev = bytes;
    this.#prevOff = off;
    const z = this.#z;
    const r = this.#r;
    this.#r =
      (z[r & 0xff]! ^
        z[256 + ((r >>> 8) & 0xff)]! ^
        z[512 + ((r >>> 16) & 0xff)]! ^
        z[768 + (r >>> 24)]! ^
        this.#rowCrc) >>>
      0;
  }

  /** Extends the CRC by `bytes` of any length (a row cut short), hashed as they are. */
  bytes(bytes: Uint8Array): void {
    this.#r = crc32Le(this.#r, bytes);
  }

  /** The CRC-32 of everything so far. */
  get value(): number {
    return ~this.#r >>> 0;
  }
}

/**
 * The IEEE CRC-32 of `rows` rows of `rowBytes` bytes, `stride` bytes apart in `bytes`
 * (the visible part of a frame, padding left out): exactly {@link crc32} of the rows
 * packed together, each row equal to the one above hashed by comparison
 * ({@link Crc32RowHasher}). `same`: rows the caller knows equal to the one above
 * (`same[y] !== 0`, by the structure of what made them), not compared either.
 */
export function crc32Rows(
  bytes: Uint8Array,
  rowBytes: number,
  stride: number,
  rows: number,
  same?: Uint8Array,
): number {
  if (rows <= 0 || rowBytes <= 0) return 0;
  const h = new Crc32RowHasher(rowBytes);
  const known = same === undefined ? 0 : Math.min(rows, same.length);
  for (let y = 0; y < rows; y++) {
    const at = y * stride;
    // A frame cut short (as subarray would cut it): hash what there is.
    if (at + rowBytes > bytes.length) h.bytes(bytes.subarray(at, at + rowBytes));
    else h.row(bytes, at, y < known && same![y] !== 0);
  }
  return h.value;
}

/**
 * The IEEE CRC-32 of A followed by B from crc32(A), crc32(B) and B's length, as zlib's
 * crc32_combine: the pre- and post-inversions cancel, leaving crc(A) through |B| zero
 * bytes XOR crc(B).
 */
export function crc32Combine(crcA: number, crcB: number, lenB: number): number {
  if (lenB <= 0) return crcA >>> 0;
  const z = zeroOperatorCached(lenB);
  const a = crcA >>> 0;
  return (
    (z[a & 0xff]! ^
      z[256 + ((a >>> 8) & 0xff)]! ^
      z[512 + ((a >>> 16) & 0xff)]! ^
      z[768 + (a >>> 24)]! ^
      crcB) >>>
    0
  );
}
