/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) as lib/crc32.c computes it.
 *
 * `crc32Le` is the kernel's crc32_le(): no inversion on the way in or out, so callers
 * chain it and choose their own seed. `crc32` is the usual zlib/Ethernet CRC-32,
 * ~crc32_le(~0, p, len). The display's frame CRC (drm_debugfs_crc.c's crc/data) and the
 * pipelines' expected CRCs both use it, so a frame the display read matches the frame
 * userspace meant if and only if the bytes agree.
 *
 * Slicing-by-8 over eight 256-entry tables: a 640x480 XRGB frame (1.2 MB) is hashed
 * in about a millisecond, so scanning out every vblank stays cheap.
 */

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
  return ~crc32Le(0xffffffff, bytes) >>> 0;
}
