// What a page downloads before its first use of a bundle built with code splitting: shared by `npm run bench:size`
// and the browser-bundle test.
import { gzipSync } from 'node:zlib'

/**
 * The gzipped bytes of what a page downloads before its first use of the package, each file gzipped as it is
 * served: the entry and the chunks it imports statically, not those it imports on first use (`import()`). Takes
 * esbuild's result (`splitting`, `metafile`, `write: false`) and the names of the files it holds.
 */
export function firstLoad(result) {
  const outputs = result.metafile.outputs
  // The metafile names files from the working directory; the output files by their whole path.
  const contentsOf = (path) => result.outputFiles.find((file) => file.path.endsWith(`/${path}`)).contents
  const entry = Object.keys(outputs).find((path) => outputs[path].entryPoint !== undefined)
  const loaded = new Set()
  const walk = (path) => {
    if (loaded.has(path)) return
    loaded.add(path)
    for (const imported of outputs[path].imports)
      if (imported.kind === 'import-statement' && !imported.external) walk(imported.path)
  }
  walk(entry)
  let gzipped = 0
  for (const path of loaded) gzipped += gzipSync(contentsOf(path)).length
  return { gzipped, files: [...loaded] }
}
