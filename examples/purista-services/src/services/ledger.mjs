import { ServiceBuilder } from '@purista/core'

/** @param {{store: import('../store.mjs').JsonStateFile}} deps */
export const buildLedgerService = ({ store }) => {
  const service = new ServiceBuilder({
    serviceName: 'ledger',
    serviceVersion: '1',
    serviceDescription: 'Read-only view of the whole state, for tests and operators',
  })

  const readLedger = service
    .getCommandBuilder('readLedger', 'The whole state: stock, reservations, charges, refunds, shipments, outbox, accounts, roles, workspaces, executions, undo bars and idempotency answers')
    .exposeAsHttpEndpoint('GET', 'ledger')
    .setCommandFunction(async function () {
      return store.snapshot()
    })

  service.addCommandDefinition(readLedger.getDefinition())
  return service
}
