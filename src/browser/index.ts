export type { WebStorage } from './local-storage.js'
export { createLocalStorage } from './local-storage.js'
export type { PageLifecycleTarget } from './page-hide.js'
export { flushOnPageHide, releaseLeasesOnPageHide } from './page-hide.js'
