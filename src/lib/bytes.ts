/**
 * Host byte comparisons for the data paths: the host's memcmp (Buffer.compare), several
 * times faster than a JavaScript loop over the same bytes.
 */

/** Whether `a[i..i+n)` equals `a[j..j+n)`: two rows of one frame, say. */
export function sameBytes(a: Uint8Array, i: number, j: number, n: number): boolean {
  return Buffer.compare(a.subarray(i, i + n), a.subarray(j, j + n)) === 0;
}
