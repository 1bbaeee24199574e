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
