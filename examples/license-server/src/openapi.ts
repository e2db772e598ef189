import { SUBJECT_PATTERN, usageBatchSchema } from 'entitle/protocol'
import * as z from 'zod'
import {
  accessRequestSchema,
  activationSchema,
  CREDIT_GRANT_ID,
  creditGrantSchema,
  decisionSchema,
  FINGERPRINT,
  LEASE_ID,
  leaseRequestSchema,
  orderSchema,
  rotationSchema,
} from './schemas.js'

/** JSON Schema of a zod schema, in the OpenAPI 3.0 dialect: generated, so the document cannot drift from the code. */
const schema = (zodSchema: z.core.$ZodType) => z.toJSONSchema(zodSchema, { target: 'openapi-3.0' })

const problem = {
  description: 'An RFC 9457 problem',
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
}
const json = (description: string) => ({
  description,
  content: { 'application/json': { schema: { type: 'object' } } },
})
const body = (name: string) => ({
  required: true,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } },
})
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [String(status), problem]))
const customer = [
  { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: SUBJECT_PATTERN.source } },
]

/**
 * The server's API as an OpenAPI 3.0 document, with request bodies generated from the same zod schemas that validate
 * them. Served at `GET /openapi.json`.
 */
export function openApiDocument(serverUrl: string) {
  return {
    openapi: '3.0.3',
    info: { title: 'entitle reference license server', version: '1.0.0' },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'admin key, service key, customer API key or license key',
        },
        orderSignature: {
          type: 'apiKey',
          in: 'header',
          name: 'Entitle-Signature',
          description: 't=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" with the order secret>',
        },
      },
      schemas: {
        Order: schema(orderSchema),
        UsageBatch: schema(usageBatchSchema),
        Activation: schema(activationSchema),
        AccessRequest: schema(accessRequestSchema),
        LeaseRequest: schema(leaseRequestSchema),
        Decision: schema(decisionSchema),
        Rotation: schema(rotationSchema),
        CreditGrant: schema(creditGrantSchema),
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
          },
        },
      },
    },
    paths: {
      '/.well-known/jwks.json': {
        get: { summary: 'The public signing keys', responses: { 200: json('A JWK Set') } },
      },
      '/v1/orders': {
        post: {
          summary: 'Place an order (purchase, upgrade, downgrade, renewal, cancellation)',
          security: [{ orderSignature: [] }],
          requestBody: body('Order'),
          responses: {
            200: json('The license'),
            201: json('A new license, with credentials'),
            ...errors(400, 401, 409, 410, 413, 415, 422),
          },
        },
      },
      '/v1/entitlements/{subject}': {
        get: {
          summary: "A customer's entitlement token (ETag, 304)",
          security: [{ bearer: [] }],
          parameters: [{ ...customer[0], name: 'subject' }],
          responses: {
            200: {
              description: 'The token',
              content: { 'application/entitlement+jwt': { schema: { type: 'string' } } },
            },
            304: { description: 'The held token is current' },
            ...errors(401, 403, 404, 410, 503),
          },
        },
      },
      '/v1/revocations': {
        get: {
          summary: 'Revoked token ids',
          security: [{ bearer: [] }],
          responses: { 200: json('{ revoked }'), 304: { description: 'Unchanged' }, ...errors(401) },
        },
      },
      '/v1/events': {
        get: {
          summary: 'Server-Sent Events: entitlements, revocations, usage thresholds crossed',
          security: [{ bearer: [] }],
          responses: {
            200: {
              description: 'text/event-stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...errors(401, 429),
          },
        },
      },
      '/v1/changes': {
        get: {
          summary: 'The events of /v1/events after a cursor, as JSON, for a client that polls',
          security: [{ bearer: [] }],
          parameters: [{ name: 'after', in: 'query', required: false, schema: { type: 'string' } }],
          responses: { 200: json('{ events, last, more }'), ...errors(401, 422) },
        },
      },
      '/v1/usage': {
        post: {
          summary: 'Ingest a usage batch; each line id counts once',
          security: [{ bearer: [] }],
          requestBody: body('UsageBatch'),
          responses: {
            200: json(
              '{ at, accepted, duplicates, refused, lines: [{ id, status, code?, reason? }], rejected }',
            ),
            ...errors(400, 401, 413, 415, 422),
          },
        },
      },
      '/v1/activations': {
        post: {
          summary: 'Activate a device: a device-bound token',
          requestBody: body('Activation'),
          responses: { 200: json('{ customerId, token, expiresAt }'), ...errors(401, 409, 410, 422) },
        },
        delete: {
          summary: 'Deactivate a device (refused while an offline license holds its seat)',
          requestBody: body('Activation'),
          responses: { 204: { description: 'Deactivated' }, ...errors(401, 404, 409, 415, 422) },
        },
      },
      '/v1/offline-licenses': {
        post: {
          summary: 'A long-lived token for an air-gapped install',
          requestBody: body('Activation'),
          responses: { 200: json('{ customerId, token, expiresAt }'), ...errors(401, 409, 410, 422) },
        },
      },
      '/v1/access-requests': {
        post: {
          summary: 'Ask for a feature',
          security: [{ bearer: [] }],
          requestBody: body('AccessRequest'),
          responses: {
            200: json('The pending request'),
            201: json('A new request'),
            ...errors(401, 403, 410, 422),
          },
        },
      },
      ...leasePaths(),
      ...adminPaths(),
    },
  }
}

const leaseId = [
  { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: LEASE_ID.source } },
]

/** Floating licenses: acquire, renew, release. */
function leasePaths() {
  const held = json('{ id, pool, holder, lease, expiresIn, heartbeat?, expiresAt, borrowed, revived }')
  return {
    '/v1/leases': {
      post: {
        summary:
          'A seat of a floating-license pool (a borrow with `borrow` seconds); 409 when the pool is full',
        security: [{ bearer: [] }],
        requestBody: body('LeaseRequest'),
        responses: {
          200: held,
          201: held,
          ...errors(401, 403, 404, 409, 410, 422),
        },
      },
    },
    '/v1/leases/{id}/heartbeat': {
      post: {
        summary: 'Renew a lease from now, or revive it within the pool’s revival window; 410 when it ended',
        security: [{ bearer: [] }],
        parameters: leaseId,
        responses: { 200: held, ...errors(401, 404, 410) },
      },
    },
    '/v1/leases/{id}': {
      delete: {
        summary: 'Give a seat back',
        security: [{ bearer: [] }],
        parameters: leaseId,
        responses: { 204: { description: 'Released' }, ...errors(401, 404) },
      },
    },
  }
}

/** The admin API, behind the admin key. */
function adminPaths() {
  return {
    '/admin/customers': {
      get: {
        summary: 'Customers and licenses',
        security: [{ bearer: [] }],
        responses: { 200: json('{ customers }'), ...errors(401) },
      },
    },
    '/admin/customers/{id}': {
      get: {
        summary: 'A customer',
        security: [{ bearer: [] }],
        parameters: customer,
        responses: { 200: json('The customer'), ...errors(401, 404) },
      },
    },
    '/admin/customers/{id}/usage': {
      get: {
        summary: 'Usage totals',
        security: [{ bearer: [] }],
        parameters: customer,
        responses: { 200: json('{ usage, resources, alerts }'), ...errors(401, 404) },
      },
    },
    '/admin/customers/{id}/revoke': {
      post: {
        summary: 'Revoke the license',
        security: [{ bearer: [] }],
        parameters: customer,
        responses: { 200: json('The revocation'), ...errors(401, 404) },
      },
    },
    '/admin/customers/{id}/credentials': {
      post: {
        summary: 'New credentials',
        security: [{ bearer: [] }],
        parameters: customer,
        responses: { 200: json('{ credentials }'), ...errors(401, 404) },
      },
    },
    '/admin/customers/{id}/devices/{fingerprint}/release': {
      post: {
        summary: "Free a device's seat whatever holds it, revoking its tokens",
        security: [{ bearer: [] }],
        parameters: [
          ...customer,
          {
            name: 'fingerprint',
            in: 'path',
            required: true,
            schema: { type: 'string', pattern: FINGERPRINT.source },
          },
        ],
        responses: { 200: json('The released device'), ...errors(401, 404) },
      },
    },
    '/admin/access-requests': {
      get: {
        summary: 'Access requests by status',
        security: [{ bearer: [] }],
        responses: { 200: json('{ requests }'), ...errors(401, 422) },
      },
    },
    '/admin/access-requests/{id}/decision': {
      post: {
        summary: 'Approve or deny',
        security: [{ bearer: [] }],
        parameters: customer,
        requestBody: body('Decision'),
        responses: { 200: json('The decision'), ...errors(401, 404, 409, 422) },
      },
    },
    '/admin/keys/rotate': {
      post: {
        summary: 'A new signing key: published now, signing after the pre-publication delay',
        security: [{ bearer: [] }],
        requestBody: { required: false, content: body('Rotation').content },
        responses: { 200: json('{ kid, signsFrom, jwks }'), ...errors(401, 415, 422) },
      },
    },
    '/admin/customers/{id}/leases': {
      get: {
        summary: 'The leases holding seats now (holder, since, expires, last heartbeat, metadata)',
        security: [{ bearer: [] }],
        parameters: customer,
        responses: { 200: json('{ leases }'), ...errors(401, 404, 422) },
      },
    },
    '/admin/leases/{id}': {
      delete: {
        summary: 'Force-release a lease: its holder loses it at its next renewal',
        security: [{ bearer: [] }],
        parameters: leaseId,
        responses: { 200: json('The released lease'), ...errors(401, 404) },
      },
    },
    ...creditPaths(),
  }
}

/** Credits: the ledger at a moment, an admin's grant, voiding one. */
function creditPaths() {
  const grantId = [
    ...customer,
    {
      name: 'grant',
      in: 'path',
      required: true,
      schema: { type: 'string', pattern: CREDIT_GRANT_ID.source },
    },
  ]
  return {
    '/admin/customers/{id}/credits': {
      get: {
        summary:
          'Each credit type’s balance grant by grant, and the burns, at a moment (?at=ISO time; default now)',
        security: [{ bearer: [] }],
        parameters: [
          ...customer,
          { name: 'at', in: 'query', required: false, schema: { type: 'string', format: 'date-time' } },
        ],
        responses: { 200: json('{ customerId, at, balances, burns }'), ...errors(401, 404, 422) },
      },
    },
    '/admin/customers/{id}/credits/grants': {
      post: {
        summary: 'Grant credits (promotional unless said), with an expiry if given; pushed to the customer',
        security: [{ bearer: [] }],
        parameters: customer,
        requestBody: body('CreditGrant'),
        responses: { 201: json('The grant'), ...errors(401, 404, 415, 422) },
      },
    },
    '/admin/customers/{id}/credits/grants/{grant}/void': {
      post: {
        summary: 'Void a grant: what is left of it is worth nothing from now on',
        security: [{ bearer: [] }],
        parameters: grantId,
        responses: { 200: json('The voided grant'), ...errors(401, 404, 422) },
      },
    },
  }
}
