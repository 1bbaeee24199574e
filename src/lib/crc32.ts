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
