import { randomInt } from 'node:crypto'

import { ServiceBuilder } from '@purista/core'
import { z } from 'zod'

import { idempotencyKey, newId, nonEmpty, nowIso } from '../common.mjs'
import { markUndone, runIdempotent } from '../store.mjs'

const trackingNumber = () => `TRK${String(randomInt(0, 1e10)).padStart(10, '0')}`

/** @param {{store: import('../store.mjs').JsonStateFile}} deps */
export const buildShippingService = ({ store }) => {
  const service = new ServiceBuilder({
    serviceName: 'shipping',
    serviceVersion: '1',
    serviceDescription: 'Shipments for orders',
  })

  const createShipment = service
    .getCommandBuilder('createShipment', 'Create a shipment; the shipment key is the idempotency key')
    .addPayloadSchema(
      z.object({
        orderId: nonEmpty,
        address: z.union([nonEmpty, z.record(z.string(), z.unknown())]),
        idempotencyKey,
      }),
    )
    .addOutputSchema(z.object({ shipmentId: z.string(), trackingNumber: z.string() }))
    .exposeAsHttpEndpoint('POST', 'shipments')
    .setCommandFunction(async function (_context, payload) {
      const key = payload.idempotencyKey
      return runIdempotent(
        store,
        { scope: 'shipping.createShipment', key, bar: { commandName: 'createShipment', what: 'shipment' } },
        state => {
          const shipment = {
            shipmentKey: key,
            shipmentId: newId('shp'),
            trackingNumber: trackingNumber(),
            orderId: payload.orderId,
            address: payload.address,
            status: 'created',
            createdAt: nowIso(),
          }
          state.shipments[key] = shipment
          return { shipmentId: shipment.shipmentId, trackingNumber: shipment.trackingNumber }
        },
      )
    })

  const cancelShipment = service
    .getCommandBuilder('cancelShipment', 'Cancel a shipment (compensation of createShipment); bars a later createShipment with that key')
    .addPayloadSchema(z.object({ idempotencyKey }))
    .addParameterSchema(z.object({ shipmentKey: nonEmpty }))
    .addOutputSchema(z.object({ cancelled: z.boolean(), note: z.string().optional() }))
    .exposeAsHttpEndpoint('POST', 'shipments/:shipmentKey/cancel')
    .setCommandFunction(async function (_context, payload, parameter) {
      const { shipmentKey } = parameter
      return runIdempotent(store, { scope: 'shipping.cancelShipment', key: payload.idempotencyKey }, state => {
        markUndone(state, 'createShipment', shipmentKey, 'cancelShipment')
        const shipment = state.shipments[shipmentKey]
        if (!shipment) {
          return { cancelled: false, note: 'no shipment was created' }
        }
        if (shipment.status === 'cancelled') {
          return { cancelled: false, note: 'shipment was already cancelled' }
        }
        shipment.status = 'cancelled'
        shipment.cancelledAt = nowIso()
        return { cancelled: true }
      })
    })

  service.addCommandDefinition(createShipment.getDefinition(), cancelShipment.getDefinition())
  return service
}
