import { HandledError, ServiceBuilder, StatusCode } from '@purista/core'
import { z } from 'zod'

import { fromCents, idempotencyKey, newId, nonEmpty, nowIso, toCents } from '../common.mjs'
import { getUndone, lookupIdempotent, markUndone, runIdempotent, undoneError } from '../store.mjs'

/** Card tokens with a fixed behaviour, for tests. */
export const DECLINED_TOKEN = 'tok_declined'
export const FLAKY_TOKEN = 'tok_flaky'
/** tok_flaky fails this many times per idempotency key, then succeeds */
export const FLAKY_FAILURES = 2

/** @param {{store: import('../store.mjs').JsonStateFile}} deps */
export const buildPaymentService = ({ store }) => {
  const service = new ServiceBuilder({
    serviceName: 'payment',
    serviceVersion: '1',
    serviceDescription: 'Card charges and refunds',
  })

  const chargeCard = service
    .getCommandBuilder('chargeCard', 'Charge a card; one kept charge per order')
    .addPayloadSchema(
      z.object({
        orderId: nonEmpty,
        customerId: nonEmpty,
        amount: z.number().finite().positive().describe('amount in euros, decimal (e.g. 12.5)'),
        cardToken: nonEmpty,
        idempotencyKey,
      }),
    )
    .addOutputSchema(z.object({ chargeId: z.string(), amount: z.number() }))
    .addOpenApiErrorStatusCodes(StatusCode.PaymentRequired, StatusCode.Conflict)
    .exposeAsHttpEndpoint('POST', 'charges')
    .setCommandFunction(async function (_context, payload) {
      const key = payload.idempotencyKey
      const scope = 'payment.chargeCard'
      const bar = { commandName: 'chargeCard', what: 'charge' }

      const undone = getUndone(store.state, bar.commandName, key)
      if (undone) {
        throw undoneError(bar.what, key, undone.undoneBy)
      }
      if (payload.cardToken === FLAKY_TOKEN && !lookupIdempotent(store, scope, key)) {
        const attempt = store.update(state => {
          state.flakyAttempts[key] = (state.flakyAttempts[key] ?? 0) + 1
          return state.flakyAttempts[key]
        })
        if (attempt <= FLAKY_FAILURES) {
          // a plain Error: PURISTA answers it as an unhandled 500
          throw new Error(`card network timeout (attempt ${attempt} for key ${key})`)
        }
      }

      return runIdempotent(store, { scope, key, bar }, state => {
        if (payload.cardToken === DECLINED_TOKEN) {
          throw new HandledError(StatusCode.PaymentRequired, 'payment declined by the card issuer', {
            orderId: payload.orderId,
          })
        }
        const kept = Object.values(state.charges).find(c => c.orderId === payload.orderId && c.status === 'captured')
        if (kept) {
          throw new HandledError(
            StatusCode.Conflict,
            `order ${payload.orderId} already has a kept charge, ${kept.chargeId}`,
            { orderId: payload.orderId, chargeId: kept.chargeId, chargeKey: kept.chargeKey },
          )
        }
        const amountCents = toCents(payload.amount)
        const charge = {
          chargeKey: key,
          chargeId: newId('ch'),
          orderId: payload.orderId,
          customerId: payload.customerId,
          amount: fromCents(amountCents),
          amountCents,
          status: 'captured',
          capturedAt: nowIso(),
        }
        state.charges[key] = charge
        return { chargeId: charge.chargeId, amount: charge.amount }
      })
    })

  const refundCharge = service
    .getCommandBuilder('refundCharge', 'Refund the charge taken under a charge key (compensation of chargeCard); bars a later chargeCard with that key')
    .addPayloadSchema(z.object({ chargeKey: nonEmpty, idempotencyKey }))
    .addOutputSchema(
      z.object({
        refunded: z.boolean(),
        chargeId: z.string().optional(),
        amount: z.number().optional(),
        note: z.string().optional(),
      }),
    )
    .exposeAsHttpEndpoint('POST', 'refunds')
    .setCommandFunction(async function (_context, payload) {
      const { chargeKey } = payload
      return runIdempotent(store, { scope: 'payment.refundCharge', key: payload.idempotencyKey }, state => {
        markUndone(state, 'chargeCard', chargeKey, 'refundCharge')
        const charge = state.charges[chargeKey]
        if (!charge) {
          return { refunded: false, note: 'no charge was taken' }
        }
        if (charge.status === 'refunded') {
          return { refunded: false, chargeId: charge.chargeId, amount: charge.amount, note: 'charge was already refunded' }
        }
        charge.status = 'refunded'
        charge.refundedAt = nowIso()
        const refundId = newId('re')
        charge.refundId = refundId
        state.refunds[payload.idempotencyKey] = {
          refundKey: payload.idempotencyKey,
          refundId,
          chargeKey,
          chargeId: charge.chargeId,
          orderId: charge.orderId,
          amount: charge.amount,
          amountCents: charge.amountCents,
          refundedAt: charge.refundedAt,
        }
        return { refunded: true, chargeId: charge.chargeId, amount: charge.amount }
      })
    })

  service.addCommandDefinition(chargeCard.getDefinition(), refundCharge.getDefinition())
  return service
}
