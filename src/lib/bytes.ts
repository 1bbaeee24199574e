/**
 * Host byte comparisons for the data paths: the host's memcmp (Buffer.compare), several
 * times faster than a JavaScript loop over the same bytes.
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
