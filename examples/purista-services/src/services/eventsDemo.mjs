// Commands whose effect is a PURISTA custom event. The relay subscription
// (src/relay.mjs) forwards these events as CloudEvents.

import { ServiceBuilder } from '@purista/core'
import { z } from 'zod'

import { nonEmpty, nowIso } from '../common.mjs'

export const emailAddressConfirmedSchema = z.object({
  userId: nonEmpty,
  email: nonEmpty,
  confirmedAt: z.string(),
})

export const fraudReviewDecidedSchema = z.object({
  orderId: nonEmpty,
  decision: z.enum(['approve', 'reject']),
  reviewer: nonEmpty,
  comment: z.string().optional(),
})

export const approvalDecidedSchema = z.object({
  requestId: nonEmpty,
  approver: nonEmpty,
  decision: z.enum(['approve', 'reject']),
  comment: z.string().optional(),
})

export const EVENT_NAMES = ['emailAddressConfirmed', 'fraudReviewDecided', 'approvalDecided']

export const buildEventsDemoService = () => {
  const service = new ServiceBuilder({
    serviceName: 'eventsDemo',
    serviceVersion: '1',
    serviceDescription: 'Human and external decisions that come back to workflows as events',
  })

  const confirmEmail = service
    .getCommandBuilder('confirmEmail', 'Confirm an e-mail address; emits emailAddressConfirmed')
    .addPayloadSchema(z.object({ userId: nonEmpty, email: nonEmpty }))
    .addOutputSchema(z.object({ confirmed: z.literal(true) }))
    .canEmit('emailAddressConfirmed', emailAddressConfirmedSchema)
    .exposeAsHttpEndpoint('POST', 'emails/confirmations')
    .setCommandFunction(async function (context, payload) {
      await context.emit('emailAddressConfirmed', {
        userId: payload.userId,
        email: payload.email,
        confirmedAt: nowIso(),
      })
      return { confirmed: true }
    })

  const decideFraudReview = service
    .getCommandBuilder('decideFraudReview', 'Record a reviewer decision on an order; emits fraudReviewDecided')
    .addPayloadSchema(fraudReviewDecidedSchema)
    .addOutputSchema(z.object({ recorded: z.literal(true) }))
    .canEmit('fraudReviewDecided', fraudReviewDecidedSchema)
    .exposeAsHttpEndpoint('POST', 'fraud/reviews')
    .setCommandFunction(async function (context, payload) {
      await context.emit('fraudReviewDecided', payload)
      return { recorded: true }
    })

  const decideApproval = service
    .getCommandBuilder('decideApproval', 'Record an approver decision on a request; emits approvalDecided')
    .addPayloadSchema(approvalDecidedSchema)
    .addOutputSchema(z.object({ recorded: z.literal(true) }))
    .canEmit('approvalDecided', approvalDecidedSchema)
    .exposeAsHttpEndpoint('POST', 'approvals/decisions')
    .setCommandFunction(async function (context, payload) {
      await context.emit('approvalDecided', payload)
      return { recorded: true }
    })

  service.addCommandDefinition(
    confirmEmail.getDefinition(),
    decideFraudReview.getDefinition(),
    decideApproval.getDefinition(),
  )
  return service
}
