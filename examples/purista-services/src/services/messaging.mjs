// email and notify: both put messages into the outbox of the state file
// (no mail is sent; the outbox is what a test or an operator reads).

import { ServiceBuilder } from '@purista/core'
import { z } from 'zod'

import { idempotencyKey, newId, nonEmpty, nowIso } from '../common.mjs'
import { runIdempotent } from '../store.mjs'

const addToOutbox = (state, message) => {
  const entry = { messageId: newId('msg'), ...message, queuedAt: nowIso() }
  state.outbox.push(entry)
  return entry.messageId
}

/** @param {{store: import('../store.mjs').JsonStateFile}} deps */
export const buildEmailService = ({ store }) => {
  const service = new ServiceBuilder({
    serviceName: 'email',
    serviceVersion: '1',
    serviceDescription: 'Transactional e-mail (outbox)',
  })

  const sendEmail = service
    .getCommandBuilder('sendEmail', 'Queue an e-mail from a template')
    .addPayloadSchema(
      z.object({
        to: nonEmpty,
        template: nonEmpty,
        subject: nonEmpty,
        reference: z.string().optional(),
        idempotencyKey,
      }),
    )
    .addOutputSchema(z.object({ messageId: z.string() }))
    .exposeAsHttpEndpoint('POST', 'emails')
    .setCommandFunction(async function (_context, payload) {
      return runIdempotent(store, { scope: 'email.sendEmail', key: payload.idempotencyKey }, state => ({
        messageId: addToOutbox(state, {
          command: 'sendEmail',
          to: payload.to,
          template: payload.template,
          subject: payload.subject,
          reference: payload.reference,
          idempotencyKey: payload.idempotencyKey,
        }),
      }))
    })

  service.addCommandDefinition(sendEmail.getDefinition())
  return service
}

/** @param {{store: import('../store.mjs').JsonStateFile, adminEmail: string}} deps */
export const buildNotifyService = ({ store, adminEmail }) => {
  const service = new ServiceBuilder({
    serviceName: 'notify',
    serviceVersion: '1',
    serviceDescription: 'Notifications to users and to the administrator (outbox)',
  })

  const notifyUsers = service
    .getCommandBuilder('notifyUsers', 'Notify a list of recipients; one message per recipient')
    .addPayloadSchema(
      z.object({
        recipients: z.array(nonEmpty).min(1),
        template: nonEmpty,
        subject: nonEmpty,
        reference: z.string().optional(),
        idempotencyKey,
      }),
    )
    .addOutputSchema(z.object({ messageIds: z.array(z.string()) }))
    .exposeAsHttpEndpoint('POST', 'notifications')
    .setCommandFunction(async function (_context, payload) {
      return runIdempotent(store, { scope: 'notify.notifyUsers', key: payload.idempotencyKey }, state => ({
        messageIds: payload.recipients.map(to =>
          addToOutbox(state, {
            command: 'notifyUsers',
            to,
            template: payload.template,
            subject: payload.subject,
            reference: payload.reference,
            idempotencyKey: payload.idempotencyKey,
          }),
        ),
      }))
    })

  const notifyAdmin = service
    .getCommandBuilder('notifyAdmin', 'Notify the administrator (ADMIN_EMAIL)')
    .addPayloadSchema(
      z.object({
        template: nonEmpty,
        subject: nonEmpty,
        reference: z.string().optional(),
        idempotencyKey,
      }),
    )
    .addOutputSchema(z.object({ messageId: z.string() }))
    .exposeAsHttpEndpoint('POST', 'notifications/admin')
    .setCommandFunction(async function (_context, payload) {
      return runIdempotent(store, { scope: 'notify.notifyAdmin', key: payload.idempotencyKey }, state => ({
        messageId: addToOutbox(state, {
          command: 'notifyAdmin',
          to: adminEmail,
          template: payload.template,
          subject: payload.subject,
          reference: payload.reference,
          idempotencyKey: payload.idempotencyKey,
        }),
      }))
    })

  service.addCommandDefinition(notifyUsers.getDefinition(), notifyAdmin.getDefinition())
  return service
}
