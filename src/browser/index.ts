export type { WebStorage } from './local-storage.js'
export { createLocalStorage } from './local-storage.js'
