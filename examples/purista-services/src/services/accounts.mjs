import { HandledError, ServiceBuilder, StatusCode } from '@purista/core'
import { z } from 'zod'

import { idempotencyKey, newId, nonEmpty, nowIso } from '../common.mjs'
import { markUndone, runIdempotent } from '../store.mjs'

/** @param {{store: import('../store.mjs').JsonStateFile}} deps */
export const buildAccountsService = ({ store }) => {
  const service = new ServiceBuilder({
    serviceName: 'accounts',
    serviceVersion: '1',
    serviceDescription: 'User accounts and their roles',
  })

  const createAccount = service
    .getCommandBuilder('createAccount', 'Create an active account; the account key is the idempotency key')
    .addPayloadSchema(z.object({ userId: nonEmpty, email: nonEmpty, displayName: nonEmpty, idempotencyKey }))
    .addOutputSchema(z.object({ accountId: z.string() }))
    .addOpenApiErrorStatusCodes(StatusCode.Conflict)
    .exposeAsHttpEndpoint('POST', 'accounts')
    .setCommandFunction(async function (_context, payload) {
      const key = payload.idempotencyKey
      return runIdempotent(
        store,
        { scope: 'accounts.createAccount', key, bar: { commandName: 'createAccount', what: 'account' } },
        state => {
          const email = payload.email.toLowerCase()
          const taken = Object.values(state.accounts).find(a => a.status === 'active' && a.email.toLowerCase() === email)
          if (taken) {
            throw new HandledError(StatusCode.Conflict, `an active account already uses ${payload.email}`, {
              email: payload.email,
              accountId: taken.accountId,
            })
          }
          const account = {
            accountKey: key,
            accountId: newId('acc'),
            userId: payload.userId,
            email: payload.email,
            displayName: payload.displayName,
            status: 'active',
            createdAt: nowIso(),
          }
          state.accounts[key] = account
          return { accountId: account.accountId }
        },
      )
    })

  const deactivateAccount = service
    .getCommandBuilder('deactivateAccount', 'Deactivate an account (compensation of createAccount); bars a later createAccount with that key')
    .addPayloadSchema(z.object({ idempotencyKey }))
    .addParameterSchema(z.object({ accountKey: nonEmpty }))
    .addOutputSchema(
      z.object({ deactivated: z.boolean(), accountId: z.string().optional(), note: z.string().optional() }),
    )
    .exposeAsHttpEndpoint('POST', 'accounts/:accountKey/deactivate')
    .setCommandFunction(async function (_context, payload, parameter) {
      const { accountKey } = parameter
      return runIdempotent(store, { scope: 'accounts.deactivateAccount', key: payload.idempotencyKey }, state => {
        markUndone(state, 'createAccount', accountKey, 'deactivateAccount')
        const account = state.accounts[accountKey]
        if (!account) {
          return { deactivated: false, note: 'no account was created' }
        }
        if (account.status !== 'active') {
          return { deactivated: false, accountId: account.accountId, note: 'account was already deactivated' }
        }
        account.status = 'deactivated'
        account.deactivatedAt = nowIso()
        return { deactivated: true, accountId: account.accountId }
      })
    })

  const assignRole = service
    .getCommandBuilder('assignRole', 'Assign a role to an active account; the role key is the idempotency key')
    .addPayloadSchema(z.object({ role: nonEmpty, idempotencyKey }))
    .addParameterSchema(z.object({ accountKey: nonEmpty }))
    .addOutputSchema(z.object({ role: z.string(), accountId: z.string() }))
    .addOpenApiErrorStatusCodes(StatusCode.Conflict)
    .exposeAsHttpEndpoint('POST', 'accounts/:accountKey/roles')
    .setCommandFunction(async function (_context, payload, parameter) {
      const key = payload.idempotencyKey
      const { accountKey } = parameter
      return runIdempotent(
        store,
        { scope: 'accounts.assignRole', key, bar: { commandName: 'assignRole', what: 'role assignment' } },
        state => {
          const account = state.accounts[accountKey]
          if (!account || account.status !== 'active') {
            throw new HandledError(StatusCode.Conflict, `no active account under key '${accountKey}'`, { accountKey })
          }
          state.roles[key] = {
            roleKey: key,
            accountKey,
            accountId: account.accountId,
            role: payload.role,
            status: 'assigned',
            assignedAt: nowIso(),
          }
          return { role: payload.role, accountId: account.accountId }
        },
      )
    })

  const revokeRole = service
    .getCommandBuilder('revokeRole', 'Revoke a role assignment (compensation of assignRole); bars a later assignRole with that key')
    .addPayloadSchema(z.object({ idempotencyKey }))
    .addParameterSchema(z.object({ roleKey: nonEmpty }))
    .addOutputSchema(z.object({ revoked: z.boolean(), note: z.string().optional() }))
    .exposeAsHttpEndpoint('POST', 'roles/:roleKey/revoke')
    .setCommandFunction(async function (_context, payload, parameter) {
      const { roleKey } = parameter
      return runIdempotent(store, { scope: 'accounts.revokeRole', key: payload.idempotencyKey }, state => {
        markUndone(state, 'assignRole', roleKey, 'revokeRole')
        const role = state.roles[roleKey]
        if (!role) {
          return { revoked: false, note: 'no role was assigned' }
        }
        if (role.status !== 'assigned') {
          return { revoked: false, note: 'role was already revoked' }
        }
        role.status = 'revoked'
        role.revokedAt = nowIso()
        return { revoked: true }
      })
    })

  service.addCommandDefinition(
    createAccount.getDefinition(),
    deactivateAccount.getDefinition(),
    assignRole.getDefinition(),
    revokeRole.getDefinition(),
  )
  return service
}
