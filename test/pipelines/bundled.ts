/** The bundled scenarios as the mutation and call-site tests run them. */

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { examplesDir } from "../../src/cli/list.js";
import type { BufferSource, PipelineSpec } from "../../src/pipelines/types.js";
import { loadScenarioFile, scenarioToSpec } from "../../src/scenarios/scenario.js";

/** Every bundled scenario file name (examples/scenarios/*.yaml). */
export function bundledScenarios(): string[] {
  return readdirSync(examplesDir(process.cwd())).filter((f) => f.endsWith(".yaml"));
}

/**
 * A bundled scenario at small frames (128x64, at most 3 frames): fast, and its call
 * sites are the same at any size.
 */
export function smallBundledSpec(file: string): PipelineSpec {
  const spec = scenarioToSpec(loadScenarioFile(join(examplesDir(process.cwd()), file)));
  return {
    ...spec,
    frames: Math.min(spec.frames ?? 8, 3),
    width: 128,
    height: 64,
    bufferBytes: undefined,
  };
}

/** Every source of the camera's buffers, with its heap where it takes one. */
export const BUFFER_SOURCES: readonly [BufferSource, string | undefined][] = [
  ["v4l2-mmap", undefined],
  ["dma-heap", "system"],
  ["dma-heap", "cma"],
  ["udmabuf", undefined],
];
