// Fault injection, a testing aid. Not business state: rules live in memory
// only and are gone after a restart.
//
// A rule says: for command X (by command name), the next `times` HTTP calls
// - wait `delayMs` first (a hang), and then
// - answer `status` (with `body`/`headers`, Retry-After for 429/503) instead of
//   invoking the command, or, without `status` and `body`, invoke the command
//   as usual after the wait.
// The HTTP adapter asks for a matching rule (internal command takeFault)
// before it invokes a command.

import { HandledError, ServiceBuilder, StatusCode } from '@purista/core'
import { z } from 'zod'

import { newId, nowIso } from '../common.mjs'

export const faultRuleSchema = z
  .object({
    commandName: z.string().min(1).describe('PURISTA command name, e.g. chargeCard'),
    times: z.number().int().positive().default(1).describe('how many following calls the rule applies to'),
    status: z.number().int().min(100).max(599).optional().describe('answer this status instead of invoking the command'),
    delayMs: z.number().int().min(0).max(600000).optional().describe('hang this long before answering'),
    body: z.unknown().optional().describe('answer this JSON body (status defaults to 200)'),
    headers: z.record(z.string(), z.string()).optional().describe('extra response headers'),
    retryAfter: z
      .union([z.number().int().min(0), z.string().min(1)])
      .optional()
      .describe('Retry-After header value; 429 and 503 default to 1'),
  })
  .refine(r => r.status !== undefined || r.delayMs !== undefined || r.body !== undefined, {
    message: 'a fault needs at least one of status, delayMs, body',
  })

/** @param {{knownCommandNames: () => Set<string>}} deps */
export const buildFaultsService = ({ knownCommandNames }) => {
  /** @type {Array<object>} */
  let rules = []

  const service = new ServiceBuilder({
    serviceName: 'faults',
    serviceVersion: '1',
    serviceDescription: 'Testing aid: inject HTTP faults (status, hang, wrong body) for the next calls of a command',
  })

  const setFaults = service
    .getCommandBuilder('setFaults', 'Add fault rules: one rule, or {faults: [rules]}')
    .addPayloadSchema(z.union([faultRuleSchema, z.object({ faults: z.array(faultRuleSchema).min(1) })]))
    .addOutputSchema(
      z.object({
        faults: z.array(z.object({ faultId: z.string(), commandName: z.string(), remaining: z.number() })),
      }),
    )
    .addOpenApiErrorStatusCodes(StatusCode.UnprocessableEntity)
    .exposeAsHttpEndpoint('POST', 'faults')
    .setCommandFunction(async function (_context, payload) {
      const input = 'faults' in payload ? payload.faults : [payload]
      const known = knownCommandNames()
      for (const rule of input) {
        if (!known.has(rule.commandName)) {
          throw new HandledError(StatusCode.UnprocessableEntity, `unknown command '${rule.commandName}'`, {
            knownCommands: [...known].sort(),
          })
        }
      }
      const added = input.map(rule => ({
        faultId: newId('fault'),
        ...rule,
        remaining: rule.times,
        createdAt: nowIso(),
      }))
      rules.push(...added)
      return { faults: added.map(r => ({ faultId: r.faultId, commandName: r.commandName, remaining: r.remaining })) }
    })

  const clearFaults = service
    .getCommandBuilder('clearFaults', 'Remove all fault rules, or those of ?commandName=X')
    .addQueryParameters({ name: 'commandName', required: false })
    .exposeAsHttpEndpoint('DELETE', 'faults')
    .setCommandFunction(async function (_context, _payload, parameter) {
      const name = parameter?.commandName
      rules = name ? rules.filter(r => r.commandName !== name) : []
    })

  const listFaults = service
    .getCommandBuilder('listFaults', 'The fault rules still waiting to fire')
    .exposeAsHttpEndpoint('GET', 'faults')
    .setCommandFunction(async function () {
      return { faults: rules }
    })

  // internal, not exposed over HTTP: the adapter takes the next rule for a command
  const takeFault = service
    .getCommandBuilder('takeFault', 'Take the next fault rule for a command (used by the HTTP adapter)')
    .addPayloadSchema(z.object({ commandName: z.string().min(1) }))
    .setCommandFunction(async function (_context, payload) {
      const rule = rules.find(r => r.commandName === payload.commandName && r.remaining > 0)
      if (!rule) {
        return { fault: null }
      }
      rule.remaining -= 1
      if (rule.remaining <= 0) {
        rules = rules.filter(r => r !== rule)
      }
      return { fault: { ...rule } }
    })

  service.addCommandDefinition(
    setFaults.getDefinition(),
    clearFaults.getDefinition(),
    listFaults.getDefinition(),
    takeFault.getDefinition(),
  )
  return service
}
