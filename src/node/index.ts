export { createFileStorage, tokenFromFile } from './file-storage.js'
