import * as z from 'zod'

/** Ids the server stores and echoes: letters, digits and a few separators, never a path or markup. */
const id = (max: number) =>
  z.string().regex(new RegExp(`^[A-Za-z0-9._:-]{1,${max}}$`), `1 to ${max} of A-Z a-z 0-9 . _ : -`)

/** An order from the CRM, ERP or payment system: `POST /v1/orders`, signed. */
export const orderSchema = z.strictObject({
  orderId: id(128),
  type: z.enum(['purchase', 'upgrade', 'downgrade', 'renewal', 'cancellation']),
  customer: z.strictObject({ id: id(64), name: z.string().min(1).max(200).optional() }),
  sku: z.string().min(1).max(64).optional(),
  tier: z.int().nonnegative().optional(),
  seats: z.int().min(1).max(100_000).optional(),
  addons: z.array(z.string().min(1).max(64)).max(32).optional(),
  termMonths: z.int().min(1).max(120).optional(),
})
export type Order = z.output<typeof orderSchema>

/** One usage line as the SDK sends it (docs/metering.md); unknown fields are ignored, not refused. */
export const usageLineSchema = z.object({
  id: z.string().min(1).max(128),
  subject: id(64).optional(),
  metric: z.string().min(1).max(256),
  amount: z.number().nonnegative().max(1e15),
  start: z.int().nonnegative(),
  end: z.int().nonnegative(),
  dimensions: z.record(z.string().max(128), z.string().max(512)).optional(),
  properties: z.record(z.string(), z.unknown()).optional(),
})

/** `POST /v1/usage`: a batch of lines, with its id. */
export const usageBatchSchema = z.object({
  batch: z.string().max(128).optional(),
  lines: z.array(usageLineSchema).max(10_000),
})
export type UsageBatch = z.output<typeof usageBatchSchema>

/** `POST /v1/activations` and `/v1/offline-licenses`: a license key and the device asking. */
export const activationSchema = z.strictObject({
  licenseKey: z.string().min(1).max(200),
  fingerprint: z
    .string()
    .regex(/^[A-Za-z0-9._:+/=-]{8,128}$/, 'a device fingerprint: 8 to 128 safe characters'),
})

/** `POST /v1/access-requests`: a user asks for a feature. The service names the customer; a customer need not. */
export const accessRequestSchema = z.strictObject({
  subject: id(64).optional(),
  feature: z.string().min(1).max(64),
  requestedBy: z.string().min(1).max(200),
  note: z.string().max(2000).optional(),
})
export type AccessRequestInput = z.output<typeof accessRequestSchema>

/** `POST /admin/access-requests/:id/decision`. */
export const decisionSchema = z.strictObject({
  approve: z.boolean(),
  by: z.string().min(1).max(200),
})
