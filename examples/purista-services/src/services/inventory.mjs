import { HandledError, ServiceBuilder, StatusCode } from '@purista/core'
import { z } from 'zod'

import { idempotencyKey, nonEmpty, nowIso } from '../common.mjs'
import { markUndone, runIdempotent } from '../store.mjs'

/** @param {{store: import('../store.mjs').JsonStateFile}} deps */
export const buildInventoryService = ({ store }) => {
  const service = new ServiceBuilder({
    serviceName: 'inventory',
    serviceVersion: '1',
    serviceDescription: 'Stock reservations for orders',
  })

  const reserveStock = service
    .getCommandBuilder('reserveStock', 'Reserve stock for the lines of an order; the reservation key is the idempotency key')
    .addPayloadSchema(
      z.object({
        orderId: nonEmpty,
        lines: z
          .array(z.object({ sku: nonEmpty, qty: z.number().int().positive() }))
          .min(1),
        idempotencyKey,
      }),
    )
    .addOutputSchema(z.object({ reservationKey: z.string(), lineCount: z.number().int() }))
    .addOpenApiErrorStatusCodes(StatusCode.Conflict, StatusCode.UnprocessableEntity)
    .exposeAsHttpEndpoint('POST', 'reservations')
    .setCommandFunction(async function (_context, payload) {
      const key = payload.idempotencyKey
      return runIdempotent(
        store,
        { scope: 'inventory.reserveStock', key, bar: { commandName: 'reserveStock', what: 'reservation' } },
        state => {
          const wanted = new Map()
          for (const line of payload.lines) {
            if (!(line.sku in state.stock)) {
              throw new HandledError(StatusCode.UnprocessableEntity, `unknown SKU '${line.sku}'`, { sku: line.sku })
            }
            wanted.set(line.sku, (wanted.get(line.sku) ?? 0) + line.qty)
          }
          for (const [sku, qty] of wanted) {
            const available = state.stock[sku]
            if (available < qty) {
              throw new HandledError(StatusCode.Conflict, `${sku}: ${available} available, ${qty} requested`, {
                sku,
                available,
                requested: qty,
              })
            }
          }
          for (const [sku, qty] of wanted) {
            state.stock[sku] -= qty
          }
          state.reservations[key] = {
            reservationKey: key,
            orderId: payload.orderId,
            lines: payload.lines.map(l => ({ sku: l.sku, qty: l.qty })),
            status: 'held',
            reservedAt: nowIso(),
          }
          return { reservationKey: key, lineCount: payload.lines.length }
        },
      )
    })

  const releaseStock = service
    .getCommandBuilder('releaseStock', 'Release a reservation (compensation of reserveStock); bars a later reserveStock with that key')
    .addPayloadSchema(z.object({ idempotencyKey }))
    .addParameterSchema(z.object({ reservationKey: nonEmpty }))
    .addOutputSchema(z.object({ releasedLines: z.number().int(), note: z.string().optional() }))
    .exposeAsHttpEndpoint('POST', 'reservations/:reservationKey/release')
    .setCommandFunction(async function (_context, payload, parameter) {
      const { reservationKey } = parameter
      return runIdempotent(store, { scope: 'inventory.releaseStock', key: payload.idempotencyKey }, state => {
        markUndone(state, 'reserveStock', reservationKey, 'releaseStock')
        const reservation = state.reservations[reservationKey]
        if (!reservation || reservation.status !== 'held') {
          return { releasedLines: 0, note: 'no stock was held' }
        }
        for (const line of reservation.lines) {
          state.stock[line.sku] = (state.stock[line.sku] ?? 0) + line.qty
        }
        reservation.status = 'released'
        reservation.releasedAt = nowIso()
        return { releasedLines: reservation.lines.length }
      })
    })

  service.addCommandDefinition(reserveStock.getDefinition(), releaseStock.getDefinition())
  return service
}
