import { randomBytes } from 'node:crypto'

import { z } from 'zod'

/** A short random id with a readable prefix, e.g. `ch-3f9a0c1d2e4b`. */
export const newId = prefix => `${prefix}-${randomBytes(6).toString('hex')}`

export const nowIso = () => new Date().toISOString()

export const idempotencyKey = z.string().min(1).max(200).describe('idempotency key; a repeated key answers the first answer')

/** A decimal amount of euros, e.g. 12.5 */
export const euros = z.number().finite().nonnegative().describe('amount in euros, decimal (e.g. 12.5)')

export const toCents = amount => Math.round(amount * 100)
export const fromCents = cents => cents / 100

export const nonEmpty = z.string().min(1)
