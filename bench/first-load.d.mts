import type { BuildResult } from 'esbuild'

/** See first-load.mjs. */
export function firstLoad(result: BuildResult & { metafile: NonNullable<BuildResult['metafile']> }): {
  gzipped: number
  files: string[]
}
