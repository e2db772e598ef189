export { createFileStorage, tokenFromFile } from './file-storage.js'
export { releaseLeasesOnExit } from './release-on-exit.js'
