// Starts the in-memory PURISTA event bridge, all services, the event relay
// subscriptions and the HTTP adapter. Prints one line to stdout when ready:
//   purista services listening on http://HOST:PORT
// Logs (PURISTA's pino logger and one line per HTTP request) go to stderr.

import {
  DefaultEventBridge,
  DefaultLogger,
  initDefaultConfigStore,
  initDefaultSecretStore,
  initDefaultStateStore,
} from '@purista/core'
import { pino } from 'pino'

import { createHttpAdapter } from './src/httpAdapter.mjs'
import { buildRelayService } from './src/relay.mjs'
import { buildAccountsService } from './src/services/accounts.mjs'
import { buildApprovalsService } from './src/services/approvals.mjs'
import { EVENT_NAMES, buildEventsDemoService } from './src/services/eventsDemo.mjs'
import { buildFaultsService } from './src/services/faults.mjs'
import { buildFraudService } from './src/services/fraud.mjs'
import { buildInventoryService } from './src/services/inventory.mjs'
import { buildLedgerService } from './src/services/ledger.mjs'
import { buildEmailService, buildNotifyService } from './src/services/messaging.mjs'
import { buildPaymentService } from './src/services/payment.mjs'
import { buildShippingService } from './src/services/shipping.mjs'
import { buildWorkspaceService } from './src/services/workspace.mjs'
import { JsonStateFile } from './src/store.mjs'

const env = process.env

const fail = message => {
  process.stderr.write(`${message}\n`)
  process.exit(2)
}

const config = {
  host: env.HOST || '127.0.0.1',
  port: env.PORT === undefined || env.PORT === '' ? 8090 : /^\d+$/.test(env.PORT) ? Number(env.PORT) : NaN,
  stateFile: env.PURISTA_STATE_FILE || './state.json',
  errorStyle: (env.PURISTA_ERROR_STYLE || 'v3').toLowerCase(),
  reviewThreshold: env.FRAUD_REVIEW_THRESHOLD ? Number(env.FRAUD_REVIEW_THRESHOLD) : 1000,
  adminEmail: env.ADMIN_EMAIL || 'admin@example.com',
  blockedRequesters: (env.BLOCKED_REQUESTERS || '')
    .split(',')
    .map(s => s.trim())
    .filter(Boolean),
  relayUrl: env.RELAY_URL || undefined,
  relayToken: env.RELAY_TOKEN || undefined,
  relayMaxAttempts: env.RELAY_MAX_ATTEMPTS ? Number(env.RELAY_MAX_ATTEMPTS) : 6,
  logLevel: env.LOG_LEVEL || 'info',
}

if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) fail(`invalid PORT '${env.PORT}'`)
if (!['v2', 'v3'].includes(config.errorStyle)) fail(`PURISTA_ERROR_STYLE must be v2 or v3, not '${env.PURISTA_ERROR_STYLE}'`)
if (!Number.isInteger(config.relayMaxAttempts) || config.relayMaxAttempts < 1) fail(`invalid RELAY_MAX_ATTEMPTS '${env.RELAY_MAX_ATTEMPTS}'`)
if (!Number.isFinite(config.reviewThreshold)) fail(`invalid FRAUD_REVIEW_THRESHOLD '${env.FRAUD_REVIEW_THRESHOLD}'`)
if (config.relayUrl !== undefined && !URL.canParse(config.relayUrl)) fail(`RELAY_URL '${config.relayUrl}' is not a URL`)

// PURISTA logs to stderr, so stdout carries only the ready line
const logger = new DefaultLogger(pino({ name: 'PURISTA', level: config.logLevel }, pino.destination(2)))

let store
try {
  store = new JsonStateFile(config.stateFile).load()
} catch (err) {
  fail(err.message)
}

const eventBridge = new DefaultEventBridge({ logger, logWarnOnMessagesWithoutReceiver: false })
await eventBridge.start()

const knownCommandNames = new Set()

const builders = [
  buildInventoryService({ store }),
  buildPaymentService({ store }),
  buildFraudService({ reviewThreshold: config.reviewThreshold }),
  buildShippingService({ store }),
  buildEmailService({ store }),
  buildNotifyService({ store, adminEmail: config.adminEmail }),
  buildAccountsService({ store }),
  buildWorkspaceService({ store }),
  buildApprovalsService({ store, blockedRequesters: config.blockedRequesters }),
  buildLedgerService({ store }),
  buildEventsDemoService(),
  buildFaultsService({ knownCommandNames: () => knownCommandNames }),
  buildRelayService({
    relayUrl: config.relayUrl,
    relayToken: config.relayToken,
    maxAttempts: config.relayMaxAttempts,
    eventNames: EVENT_NAMES,
  }),
]

// the services keep their business state in the JSON state file; PURISTA's
// own in-memory stores are shared and unused
const stores = {
  secretStore: initDefaultSecretStore({ logger }),
  configStore: initDefaultConfigStore({ logger }),
  stateStore: initDefaultStateStore({ logger }),
}

const services = []
for (const builder of builders) {
  const service = await builder.getInstance(eventBridge, { logger, ...stores })
  await service.start()
  services.push(service)
  for (const command of service.commandDefinitionList) knownCommandNames.add(command.commandName)
}

const { server } = createHttpAdapter({
  eventBridge,
  services,
  apiMountPath: '/api',
  errorStyle: config.errorStyle,
  faultSource: { serviceName: 'faults', serviceVersion: '1', serviceTarget: 'takeFault' },
})

server.on('error', err => fail(`http server failed: ${err.message}`))
server.listen(config.port, config.host, () => {
  const { port } = server.address()
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  process.stdout.write(`purista services listening on http://${host}:${port}\n`)
})

let stopping = false
const stop = async signal => {
  if (stopping) return
  stopping = true
  logger.info({ signal }, 'stopping')
  const force = setTimeout(() => {
    process.stderr.write('shutdown took too long; exiting\n')
    process.exit(0)
  }, 10000)
  force.unref()
  try {
    await new Promise(resolve => {
      server.close(() => resolve())
      server.closeIdleConnections?.()
      setTimeout(() => server.closeAllConnections?.(), 2000).unref()
    })
    for (const service of services.reverse()) {
      await service.destroy()
    }
    await eventBridge.destroy()
  } catch (err) {
    process.stderr.write(`error during shutdown: ${err?.stack ?? err}\n`)
  }
  process.exit(0)
}

process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
