import { ServiceBuilder } from '@purista/core'
import { z } from 'zod'

import { idempotencyKey, newId, nonEmpty, nowIso } from '../common.mjs'
import { markUndone, runIdempotent } from '../store.mjs'

/** @param {{store: import('../store.mjs').JsonStateFile}} deps */
export const buildWorkspaceService = ({ store }) => {
  const service = new ServiceBuilder({
    serviceName: 'workspace',
    serviceVersion: '1',
    serviceDescription: 'Workspaces owned by users',
  })

  const createWorkspace = service
    .getCommandBuilder('createWorkspace', 'Create a workspace; the workspace key is the idempotency key')
    .addPayloadSchema(z.object({ ownerId: nonEmpty, name: nonEmpty, idempotencyKey }))
    .addOutputSchema(z.object({ workspaceId: z.string() }))
    .exposeAsHttpEndpoint('POST', 'workspaces')
    .setCommandFunction(async function (_context, payload) {
      const key = payload.idempotencyKey
      return runIdempotent(
        store,
        { scope: 'workspace.createWorkspace', key, bar: { commandName: 'createWorkspace', what: 'workspace' } },
        state => {
          const workspace = {
            workspaceKey: key,
            workspaceId: newId('ws'),
            ownerId: payload.ownerId,
            name: payload.name,
            status: 'active',
            createdAt: nowIso(),
          }
          state.workspaces[key] = workspace
          return { workspaceId: workspace.workspaceId }
        },
      )
    })

  const deleteWorkspace = service
    .getCommandBuilder('deleteWorkspace', 'Delete a workspace (compensation of createWorkspace); bars a later createWorkspace with that key')
    .addPayloadSchema(z.object({ idempotencyKey }))
    .addParameterSchema(z.object({ workspaceKey: nonEmpty }))
    .addOutputSchema(z.object({ deleted: z.boolean(), note: z.string().optional() }))
    .exposeAsHttpEndpoint('POST', 'workspaces/:workspaceKey/delete')
    .setCommandFunction(async function (_context, payload, parameter) {
      const { workspaceKey } = parameter
      return runIdempotent(store, { scope: 'workspace.deleteWorkspace', key: payload.idempotencyKey }, state => {
        markUndone(state, 'createWorkspace', workspaceKey, 'deleteWorkspace')
        const workspace = state.workspaces[workspaceKey]
        if (!workspace) {
          return { deleted: false, note: 'no workspace was created' }
        }
        if (workspace.status !== 'active') {
          return { deleted: false, note: 'workspace was already deleted' }
        }
        workspace.status = 'deleted'
        workspace.deletedAt = nowIso()
        return { deleted: true }
      })
    })

  service.addCommandDefinition(createWorkspace.getDefinition(), deleteWorkspace.getDefinition())
  return service
}
