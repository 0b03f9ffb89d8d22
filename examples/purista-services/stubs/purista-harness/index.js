// Stand-in for @purista/harness, which is not published on the npm registry
// this project installs from. @purista/core 3.2.4 imports exactly these four
// runtime names, and only inside its AgentQueueBuilder runtime
// (dist/AgentQueueBuilder/runtime/{modelBindings,executor,stateStore}.js).
// No service here defines an agent, so none of them is ever called; they exist
// so that importing @purista/core succeeds.

export class ModelError extends Error {
  constructor(message, details) {
    super(message)
    this.name = 'ModelError'
    this.details = details
  }
}

export class ModelCapabilityError extends ModelError {
  constructor(message, details) {
    super(message, details)
    this.name = 'ModelCapabilityError'
  }
}

export class InMemoryStateStore {
  #values = new Map()
  async get(key) {
    return this.#values.get(key)
  }
  async set(key, value) {
    this.#values.set(key, value)
  }
  async delete(key) {
    this.#values.delete(key)
  }
}

export function defineHarness() {
  throw new Error('@purista/harness is stubbed in this project: PURISTA agents are not available')
}
