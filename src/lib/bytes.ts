/**
 * Host byte helpers for the data paths: comparisons by the host's memcmp
 * (Buffer.compare, several times faster than a JavaScript loop over the same bytes),
 * XOR a word at a time, where two runs of bytes differ, the buffer a read goes into.
 */

/** Whether `a[i..i+n)` equals `a[j..j+n)`: two rows of one frame, say. */
export function sameBytes(a: Uint8Array, i: number, j: number, n: number): boolean {
  return Buffer.compare(a.subarray(i, i + n), a.subarray(j, j + n)) === 0;
}

/** Whether `a[i..i+n)` equals `b[j..j+n)`: a row and the one above it, each where it lies. */
export function sameBytesIn(
  a: Uint8Array,
  i: number,
  b: Uint8Array,
  j: number,
  n: number,
): boolean {
  return Buffer.compare(a.subarray(i, i + n), b.subarray(j, j + n)) === 0;
}

/**
 * Where `a[aOff..aOff+n)` and `b[bOff..bOff+n)` differ, as `[lo, hi)`: `lo` the first
 * differing index (n when none), `hi` one past the last (lo when none). A row made
 * anew is written over the old one only there (a frame's row mostly differs from the
 * last frame's in a block or two).
 */
export function differingSpan(
  a: Uint8Array,
  aOff: number,
  b: Uint8Array,
  bOff: number,
  n: number,
): { readonly lo: number; readonly hi: number } {
  let lo = 0;
  while (lo < n && a[aOff + lo] === b[bOff + lo]) lo++;
  let hi = n;
  while (hi > lo && a[aOff + hi - 1] === b[bOff + hi - 1]) hi--;
  return { lo, hi };
}

/**
 * `a[i] ^= v` for every byte (v: 0..255), four bytes at a time where `a` is word aligned
 * (a JavaScript loop over bytes is several times slower on a frame's rows).
 */
export function xorBytes(a: Uint8Array, v: number): void {
  const n = a.length;
  let i = Math.min(n, (4 - (a.byteOffset & 3)) & 3);
  for (let k = 0; k < i; k++) a[k]! ^= v;
  const words = (n - i) >>> 2;
  if (words > 0) {
    xorWords(new Int32Array(a.buffer, a.byteOffset + i, words), (v & 0xff) * 0x01010101);
    i += words * 4;
  }
  for (; i < n; i++) a[i]! ^= v;
}

/** `w[k] ^= x` for every word (a small function V8 optimizes whole). */
function xorWords(w: Int32Array, x: number): void {
  const n = w.length;
  const v = x | 0;
  for (let k = 0; k < n; k++) w[k]! ^= v;
}

/**
 * Where a read of `len` bytes goes: the first `len` bytes of the caller's buffer (a
 * program reusing one buffer, as read(2) fills the one it is given), else a new array.
 */
export function readBuffer(into: Uint8Array | undefined, len: number): Uint8Array {
  if (into === undefined) return new Uint8Array(len);
  if (into.length < len)
    throw new RangeError(`a read of ${len} bytes into a ${into.length}-byte buffer`);
  return into.subarray(0, len);
}
