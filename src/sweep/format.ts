/**
 * How sweeps print sizes. Apart from the grid parser (which loads the scenario schema)
 * so the main job's text needs nothing heavy to load.
 */

/** "64 KiB", "32 MiB", "1.5 MiB", "100 B": the binary unit that keeps the figure short. */
export function formatBytes(n: number): string {
  for (const [unit, size] of [
    ["GiB", 1024 ** 3],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
  ] as const) {
    if (Math.abs(n) >= size) {
      const v = n / size;
      return `${Number.isInteger(v) ? v : Number(v.toFixed(2))} ${unit}`;
    }
  }
  return `${n} B`;
}
