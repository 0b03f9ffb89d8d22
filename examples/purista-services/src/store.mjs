// One JSON state file for all services of this process.
//
// Read once at start, written atomically (temp file + fsync + rename) after
// every change, so the process can be stopped and started again without
// losing anything. All state changes run synchronously between two awaits, so
// no two commands interleave inside a change.

import fs from 'node:fs'
import path from 'node:path'

import { HandledError, StatusCode } from '@purista/core'

export const initialStock = () => ({
  'SKU-1': 1000,
  'SKU-2': 1000,
  'SKU-3': 1000,
  'SKU-OUT': 0,
})

export const emptyState = () => ({
  formatVersion: 1,
  stock: initialStock(),
  reservations: {},
  charges: {},
  refunds: {},
  shipments: {},
  outbox: [],
  accounts: {},
  roles: {},
  workspaces: {},
  prescreens: {},
  executions: {},
  // undone[commandName][key]: a compensation ran for that key, the step is barred
  undone: {},
  // idempotency[serviceName.commandName][idempotencyKey]: the first answer
  idempotency: {},
  // attempts per key for the tok_flaky card token
  flakyAttempts: {},
})

export class JsonStateFile {
  constructor(filePath) {
    this.filePath = path.resolve(filePath)
    this.state = emptyState()
  }

  load() {
    let text
    try {
      text = fs.readFileSync(this.filePath, 'utf8')
    } catch (err) {
      if (err.code === 'ENOENT') {
        this.state = emptyState()
        this.persist()
        return this
      }
      throw err
    }
    let loaded
    try {
      loaded = JSON.parse(text)
    } catch (err) {
      throw new Error(`state file ${this.filePath} is not JSON (${err.message}): move it away or fix it`)
    }
    if (loaded === null || typeof loaded !== 'object' || Array.isArray(loaded) || loaded.formatVersion !== 1) {
      throw new Error(`state file ${this.filePath} is not this app's state (formatVersion 1): move it away`)
    }
    this.state = { ...emptyState(), ...loaded }
    return this
  }

  persist(state = this.state) {
    const dir = path.dirname(this.filePath)
    fs.mkdirSync(dir, { recursive: true })
    const tmp = path.join(dir, `.${path.basename(this.filePath)}.${process.pid}.tmp`)
    const fd = fs.openSync(tmp, 'w')
    try {
      fs.writeSync(fd, `${JSON.stringify(state, null, 2)}\n`)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, this.filePath)
  }

  /** Run fn on the state and write it: as a transaction, so a failed write changes nothing. */
  update(fn) {
    return this.transaction(fn)
  }

  /** Run fn on a copy of the state; the copy replaces the state only once it is written, so a
   *  failed write leaves the state as it was (a retry then does the work, not a lost change). */
  transaction(fn) {
    const draft = structuredClone(this.state)
    const result = fn(draft)
    this.persist(draft)
    this.state = draft
    return result
  }

  snapshot() {
    return structuredClone(this.state)
  }
}

const nowIso = () => new Date().toISOString()

/**
 * Refusal that marks a step as barred because its compensation already ran.
 */
export const undoneError = (what, key, undoneBy) =>
  new HandledError(
    StatusCode.Conflict,
    `${what} '${key}' was undone; an undone step is not done again`,
    { code: 'undone', key, undoneBy },
  )

/** Bar a step for a key: a later call of commandName with that key is refused. */
export const markUndone = (state, commandName, key, undoneBy) => {
  state.undone[commandName] = state.undone[commandName] ?? {}
  if (!state.undone[commandName][key]) {
    state.undone[commandName][key] = { undoneBy, at: nowIso() }
  }
}

export const getUndone = (state, commandName, key) => state.undone[commandName]?.[key]

/**
 * Idempotent execution on a key.
 *
 * - barred (its undo ran): refused 409 "... was undone ..."
 * - key seen before: the first answer (output or refusal) is answered again, nothing changes
 * - else: fn runs on a copy of the state; on success the copy and the answer are kept;
 *   a HandledError (refusal) is kept as the answer for that key without other changes;
 *   any other error is not kept, so a retry runs again.
 *
 * @param {JsonStateFile} store
 * @param {{scope: string, key: string, bar?: {commandName: string, what: string}}} opts
 * @param {(state: object) => unknown} fn
 */
export const runIdempotent = (store, { scope, key, bar }, fn) => {
  if (bar) {
    const undone = getUndone(store.state, bar.commandName, key)
    if (undone) {
      throw undoneError(bar.what, key, undone.undoneBy)
    }
  }
  const prior = store.state.idempotency[scope]?.[key]
  if (prior) {
    return replay(prior)
  }
  try {
    return store.transaction(draft => {
      const output = fn(draft)
      draft.idempotency[scope] = draft.idempotency[scope] ?? {}
      draft.idempotency[scope][key] = { outcome: 'done', output: output ?? null, at: nowIso() }
      return output
    })
  } catch (err) {
    if (err instanceof HandledError) {
      store.update(state => {
        state.idempotency[scope] = state.idempotency[scope] ?? {}
        state.idempotency[scope][key] = {
          outcome: 'refused',
          status: err.errorCode,
          message: err.message,
          data: err.data ?? null,
          at: nowIso(),
        }
      })
    }
    throw err
  }
}

export const lookupIdempotent = (store, scope, key) => store.state.idempotency[scope]?.[key]

export const replay = prior => {
  if (prior.outcome === 'refused') {
    throw new HandledError(prior.status, prior.message, prior.data ?? undefined)
  }
  return prior.output ?? undefined
}
