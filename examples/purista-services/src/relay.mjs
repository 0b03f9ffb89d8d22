// Events out: PURISTA subscriptions that POST each custom event to RELAY_URL
// as a CloudEvents 1.0 structured JSON document (toCloudEvent from core).
//
// Delivery is at-least-once: 5xx answers and connection errors are retried
// with a short exponential backoff, and every retry sends the same document,
// so the CloudEvent id (the PURISTA message id) stays the same. A 4xx answer
// is final: the event is logged and dropped.

import { ServiceBuilder, toCloudEvent } from '@purista/core'

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/**
 * @param {object} options
 * @param {string|undefined} options.relayUrl
 * @param {string|undefined} options.relayToken
 * @param {string[]} options.eventNames
 * @param {number} [options.maxAttempts]
 * @param {number} [options.baseDelayMs]
 * @param {number} [options.timeoutMs]
 */
export const buildRelayService = ({
  relayUrl,
  relayToken,
  eventNames,
  maxAttempts = 6,
  baseDelayMs = 200,
  timeoutMs = 5000,
}) => {
  const service = new ServiceBuilder({
    serviceName: 'relay',
    serviceVersion: '1',
    serviceDescription: 'Forwards PURISTA events to the relay as CloudEvents',
  })

  const deliver = async (logger, cloudEvent) => {
    const body = JSON.stringify(cloudEvent)
    const headers = { 'content-type': 'application/cloudevents+json; charset=utf-8' }
    if (relayToken) {
      headers.authorization = `Bearer ${relayToken}`
    }
    const meta = { cloudEventId: cloudEvent.id, type: cloudEvent.type, relayUrl }
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let retryReason
      try {
        const res = await fetch(relayUrl, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(timeoutMs),
        })
        await res.arrayBuffer().catch(() => undefined)
        if (res.status < 300) {
          logger.info({ ...meta, attempt, status: res.status }, 'event relayed')
          return
        }
        if (res.status < 500) {
          logger.error({ ...meta, attempt, status: res.status }, 'relay refused the event; giving up')
          return
        }
        retryReason = `status ${res.status}`
      } catch (err) {
        const cause = err?.cause
        retryReason = cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? err?.message ?? String(err)
      }
      if (attempt === maxAttempts) {
        logger.error({ ...meta, attempt, reason: retryReason }, 'relay not reachable; giving up')
        return
      }
      const delay = Math.min(baseDelayMs * 2 ** (attempt - 1), 5000)
      logger.warn({ ...meta, attempt, reason: retryReason, retryInMs: delay }, 'relay delivery failed; retrying')
      await sleep(delay)
    }
  }

  for (const eventName of eventNames) {
    const subscription = service
      .getSubscriptionBuilder(`relay_${eventName}`, `Forward ${eventName} events to the relay`)
      .subscribeToEvent(eventName)
      .setSubscriptionFunction(async function (context) {
        const cloudEvent = toCloudEvent(context.message)
        if (!relayUrl) {
          context.logger.info({ cloudEvent }, 'RELAY_URL not set; event only logged')
          return
        }
        await deliver(context.logger, cloudEvent)
      })
    service.addSubscriptionDefinition(subscription.getDefinition())
  }

  return service
}
