import { idPattern, USAGE_LIMITS, usageBatchEnvelopeSchema } from 'entitle/protocol'
import * as z from 'zod'

/** Ids the server stores and echoes: the protocol's alphabet, never a path or markup. */
const id = (max: number) => z.string().regex(idPattern(max), `1 to ${max} of A-Z a-z 0-9 . _ : -`)
/** A plan, add-on or feature name, as the catalog spells them. */
const catalogName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a catalog name: lowercase, digits, . _ -')

/** An add-on bought for one resource only: `addon@kind:id`. */
const resourceAddon = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,63}@[a-z][a-z0-9_-]{0,63}:[A-Za-z0-9._:-]{1,128}$/,
    'an add-on for one resource: addon@kind:id',
  )

/** An order from the CRM, ERP or payment system: `POST /v1/orders`, signed. */
export const orderSchema = z.strictObject({
  orderId: id(128),
  /** `topup`: credit packs (`pack`, `quantity`) for a customer who holds a license. */
  type: z.enum(['purchase', 'upgrade', 'downgrade', 'renewal', 'cancellation', 'topup']),
  customer: z.strictObject({ id: id(USAGE_LIMITS.subject), name: z.string().min(1).max(200).optional() }),
  sku: catalogName.optional(),
  tier: z.int().nonnegative().optional(),
  seats: z.int().min(1).max(100_000).optional(),
  /** Add-ons for the account (`sso`), or for one resource only (`sso@workspace:ws-9`). */
  addons: z
    .array(z.union([catalogName, resourceAddon]))
    .max(32)
    .optional(),
  termMonths: z.int().min(1).max(120).optional(),
  /** A purchase that starts as a trial of this many days; a later purchase converts it. */
  trialDays: z.int().min(1).max(90).optional(),
  /** A top-up's credit pack (catalog `packs`), and how many. */
  pack: catalogName.optional(),
  quantity: z.int().min(1).max(1000).optional(),
})
export type Order = z.output<typeof orderSchema>

/** `POST /v1/usage` as first read: the protocol's envelope; each line is judged on its own afterwards. */
export { usageBatchEnvelopeSchema }
export type UsageBatchEnvelope = z.output<typeof usageBatchEnvelopeSchema>

/** A device fingerprint: 8 to 128 characters that are safe in a URL path segment and in a log. */
export const FINGERPRINT = /^[A-Za-z0-9._:+=-]{8,128}$/

/** `POST /v1/activations` and `/v1/offline-licenses`: a license key and the device asking. */
export const activationSchema = z.strictObject({
  licenseKey: z.string().min(1).max(200),
  fingerprint: z.string().regex(FINGERPRINT, 'a device fingerprint: 8 to 128 of A-Z a-z 0-9 . _ : + = -'),
})

/** `POST /v1/access-requests`: a user asks for a feature. The service names the customer; a customer need not. */
export const accessRequestSchema = z.strictObject({
  subject: id(USAGE_LIMITS.subject).optional(),
  feature: catalogName,
  requestedBy: z.string().min(1).max(200),
  note: z.string().max(2000).optional(),
})
export type AccessRequestInput = z.output<typeof accessRequestSchema>

/** `POST /admin/keys/rotate` (the body is optional). */
export const rotationSchema = z.strictObject({
  /** Sign with the new key at once instead of after the pre-publication delay: for a key that must stop now. */
  immediate: z.boolean().default(false),
})

/** `POST /admin/access-requests/:id/decision`. */
export const decisionSchema = z.strictObject({
  approve: z.boolean(),
  by: z.string().min(1).max(200),
})

/** Who holds a floating seat: a machine fingerprint, a process id, a user id; printable, no spaces. */
const HOLDER = /^[\x21-\x7e]{1,256}$/

/** `POST /v1/leases`: a seat of a pool for a holder; `borrow` (seconds) to take it offline. */
export const leaseRequestSchema = z.strictObject({
  subject: id(USAGE_LIMITS.subject).optional(),
  pool: catalogName,
  holder: z.string().regex(HOLDER, 'a holder: 1 to 256 printable characters, no spaces'),
  borrow: z.int().min(60).max(31_536_000).optional(),
  /** Shown to admins beside the lease (a host name, a user's name): at most 16 short strings. */
  metadata: z
    .record(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), z.string().max(256))
    .refine((value) => Object.keys(value).length <= 16, { message: 'at most 16 entries' })
    .optional(),
})
export type LeaseRequestInput = z.output<typeof leaseRequestSchema>

/** `POST /admin/customers/:id/credits/grants`: credits an admin grants (promotional unless said), with an expiry. */
export const creditGrantSchema = z
  .strictObject({
    type: catalogName,
    amount: z.number().positive().max(1e12),
    category: z.enum(['promotional', 'allowance', 'paid']).optional(),
    priority: z.int().min(0).max(1000).optional(),
    startsAt: z.iso.datetime({ offset: true }).optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  })
  .refine(
    (grant) =>
      grant.expiresAt === undefined ||
      Date.parse(grant.expiresAt) > Math.max(Date.parse(grant.startsAt ?? '1970-01-01T00:00:00Z'), 0),
    { message: 'expiresAt must be after startsAt', path: ['expiresAt'] },
  )

/** A credit grant id as the server makes them (`grant_…`, `order:…`, `allowance:…`, `rollover:…`). */
export const CREDIT_GRANT_ID = /^[A-Za-z0-9._:-]{1,300}$/

/** A lease id as the server makes them. */
export const LEASE_ID = /^ls_[0-9a-f]{24}$/
