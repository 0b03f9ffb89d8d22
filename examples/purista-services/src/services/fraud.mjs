import { ServiceBuilder } from '@purista/core'
import { z } from 'zod'

import { euros, nonEmpty } from '../common.mjs'

/** @param {{reviewThreshold: number}} config threshold in euros */
export const buildFraudService = ({ reviewThreshold }) => {
  const service = new ServiceBuilder({
    serviceName: 'fraud',
    serviceVersion: '1',
    serviceDescription: 'Order screening: decides whether an order needs a human review',
  })

  const screenOrder = service
    .getCommandBuilder('screenOrder', 'Screen an order; totals at or above the review threshold need a human review')
    .addPayloadSchema(z.object({ orderId: nonEmpty, customerId: nonEmpty, total: euros }))
    .addOutputSchema(z.object({ needsReview: z.boolean(), reviewThreshold: z.number() }))
    .exposeAsHttpEndpoint('POST', 'screenings')
    .setCommandFunction(async function (_context, payload) {
      return { needsReview: payload.total >= reviewThreshold, reviewThreshold }
    })

  service.addCommandDefinition(screenOrder.getDefinition())
  return service
}
