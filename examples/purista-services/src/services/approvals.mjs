import { HandledError, ServiceBuilder, StatusCode } from '@purista/core'
import { z } from 'zod'

import { euros, fromCents, idempotencyKey, newId, nonEmpty, nowIso, toCents } from '../common.mjs'
import { markUndone, runIdempotent } from '../store.mjs'

export const AUTO_APPROVE_BELOW = 1000
export const AUTO_REJECT_ABOVE = 100000

/** @param {{store: import('../store.mjs').JsonStateFile, blockedRequesters: string[]}} deps */
export const buildApprovalsService = ({ store, blockedRequesters }) => {
  const blocked = new Set(blockedRequesters)
  const service = new ServiceBuilder({
    serviceName: 'approvals',
    serviceVersion: '1',
    serviceDescription: 'Approval requests: automatic prescreening and execution of approved requests',
  })

  const prescreenRequest = service
    .getCommandBuilder('prescreenRequest', 'Decide automatically where possible; otherwise the request needs a human decision')
    .addPayloadSchema(
      z.object({ requestId: nonEmpty, requester: nonEmpty, title: nonEmpty, amount: euros, idempotencyKey }),
    )
    .addOutputSchema(z.object({ decision: z.enum(['approve', 'reject', 'review']), reason: z.string() }))
    .exposeAsHttpEndpoint('POST', 'approvals/prescreen')
    .setCommandFunction(async function (_context, payload) {
      return runIdempotent(store, { scope: 'approvals.prescreenRequest', key: payload.idempotencyKey }, state => {
        let result
        if (blocked.has(payload.requester)) {
          result = { decision: 'reject', reason: `requester ${payload.requester} is blocked` }
        } else if (payload.amount < AUTO_APPROVE_BELOW) {
          result = { decision: 'approve', reason: `amount below ${AUTO_APPROVE_BELOW.toFixed(2)}` }
        } else if (payload.amount > AUTO_REJECT_ABOVE) {
          result = { decision: 'reject', reason: `amount above ${AUTO_REJECT_ABOVE.toFixed(2)}` }
        } else {
          result = { decision: 'review', reason: 'needs a human decision' }
        }
        state.prescreens[payload.idempotencyKey] = {
          prescreenKey: payload.idempotencyKey,
          requestId: payload.requestId,
          requester: payload.requester,
          title: payload.title,
          amount: payload.amount,
          ...result,
          at: nowIso(),
        }
        return result
      })
    })

  const executeRequest = service
    .getCommandBuilder('executeRequest', 'Execute an approved request; one kept execution per request')
    .addPayloadSchema(z.object({ requestId: nonEmpty, amount: euros, idempotencyKey }))
    .addOutputSchema(z.object({ executionId: z.string() }))
    .addOpenApiErrorStatusCodes(StatusCode.Conflict)
    .exposeAsHttpEndpoint('POST', 'approvals/execute')
    .setCommandFunction(async function (_context, payload) {
      const key = payload.idempotencyKey
      return runIdempotent(
        store,
        { scope: 'approvals.executeRequest', key, bar: { commandName: 'executeRequest', what: 'execution' } },
        state => {
          const kept = Object.values(state.executions).find(
            e => e.requestId === payload.requestId && e.status === 'executed',
          )
          if (kept) {
            throw new HandledError(
              StatusCode.Conflict,
              `request ${payload.requestId} already has a kept execution, ${kept.executionId}`,
              { requestId: payload.requestId, executionId: kept.executionId, executionKey: kept.executionKey },
            )
          }
          const amountCents = toCents(payload.amount)
          const execution = {
            executionKey: key,
            executionId: newId('exe'),
            requestId: payload.requestId,
            amount: fromCents(amountCents),
            amountCents,
            status: 'executed',
            executedAt: nowIso(),
          }
          state.executions[key] = execution
          return { executionId: execution.executionId }
        },
      )
    })

  const revokeExecution = service
    .getCommandBuilder('revokeExecution', 'Revoke an execution (compensation of executeRequest); bars a later executeRequest with that key')
    .addPayloadSchema(z.object({ idempotencyKey }))
    .addParameterSchema(z.object({ executionKey: nonEmpty }))
    .addOutputSchema(z.object({ revoked: z.boolean(), note: z.string().optional() }))
    .exposeAsHttpEndpoint('POST', 'approvals/executions/:executionKey/revoke')
    .setCommandFunction(async function (_context, payload, parameter) {
      const { executionKey } = parameter
      return runIdempotent(store, { scope: 'approvals.revokeExecution', key: payload.idempotencyKey }, state => {
        markUndone(state, 'executeRequest', executionKey, 'revokeExecution')
        const execution = state.executions[executionKey]
        if (!execution) {
          return { revoked: false, note: 'no execution was made' }
        }
        if (execution.status !== 'executed') {
          return { revoked: false, note: 'execution was already revoked' }
        }
        execution.status = 'revoked'
        execution.revokedAt = nowIso()
        return { revoked: true }
      })
    })

  service.addCommandDefinition(
    prescreenRequest.getDefinition(),
    executeRequest.getDefinition(),
    revokeExecution.getDefinition(),
  )
  return service
}
