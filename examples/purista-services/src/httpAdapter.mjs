// The thinnest HTTP server adapter for PURISTA services: a plain node:http
// server standing in for @purista/hono-http-server.
//
// Routes are read from PURISTA's own command definitions: every command whose
// metadata carries `expose.http` ({method, path}, set by
// `.exposeAsHttpEndpoint(method, path)`) is served at
// `{apiMountPath}/v{serviceVersion}/{path}`, `:name` segments being path
// parameters. A request becomes a PURISTA command message
// `{payload: <JSON body>, parameter: {...query, ...path}}` sent through
// `eventBridge.invoke(...)`, as the Hono server does it.

import http from 'node:http'
import { posix } from 'node:path'

import { HandledError, StatusCode, getNewTraceId, isHttpExposedServiceMeta } from '@purista/core'

import { newId } from './common.mjs'

const MAX_BODY_BYTES = 1024 * 1024
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH'])

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

const statusTitle = status => http.STATUS_CODES[status] ?? 'Unknown Status'

/** trace id from x-trace-id, else from a W3C traceparent header, else a new one */
export const traceIdFromHeaders = headers => {
  const explicit = headers['x-trace-id']
  if (typeof explicit === 'string' && explicit.trim() !== '') {
    return explicit.trim()
  }
  const traceparent = headers.traceparent
  if (typeof traceparent === 'string') {
    const parts = traceparent.trim().split('-')
    if (parts.length >= 4 && /^[0-9a-f]{32}$/.test(parts[1]) && !/^0+$/.test(parts[1])) {
      return parts[1]
    }
  }
  return getNewTraceId()
}

/**
 * Error body in one of PURISTA's two styles.
 * - v3: RFC 9457 problem details, `application/problem+json`
 * - v2: PURISTA's ErrorResponsePayload `{status, message, data?, traceId?}`, `application/json`
 */
export const errorBody = (style, { status, message, data, traceId, instance }) => {
  if (style === 'v2') {
    const body = { status, message }
    if (data !== undefined && data !== null) body.data = data
    if (traceId) body.traceId = traceId
    return { contentType: 'application/json; charset=utf-8', body }
  }
  const body = {
    type: 'about:blank',
    title: statusTitle(status),
    status,
    detail: message,
  }
  if (instance) body.instance = instance
  if (traceId) body.traceId = traceId
  if (Array.isArray(data)) body.errors = data
  else if (data && typeof data === 'object' && typeof data.code === 'string') body.code = data.code
  return { contentType: 'application/problem+json; charset=utf-8', body }
}

const compilePath = path => {
  const segments = path.split('/').filter(Boolean)
  return {
    segments,
    openApiPath: `/${segments.map(s => (s.startsWith(':') ? `{${s.slice(1)}}` : s)).join('/')}`,
    paramNames: segments.filter(s => s.startsWith(':')).map(s => s.slice(1)),
  }
}

const matchSegments = (routeSegments, pathSegments) => {
  if (routeSegments.length !== pathSegments.length) return undefined
  const params = {}
  for (let i = 0; i < routeSegments.length; i++) {
    const r = routeSegments[i]
    const p = pathSegments[i]
    if (r.startsWith(':')) {
      if (p === '') return undefined
      params[r.slice(1)] = p
    } else if (r !== p) {
      return undefined
    }
  }
  return params
}

/** All HTTP-exposed commands of the given PURISTA service instances. */
export const collectRoutes = (services, apiMountPath) => {
  const routes = []
  for (const service of services) {
    const info = service.serviceInfo
    for (const command of service.commandDefinitionList) {
      if (!isHttpExposedServiceMeta(command.metadata)) continue
      const expose = command.metadata.expose
      const fullPath = posix.join(apiMountPath, `v${info.serviceVersion}`, expose.http.path)
      routes.push({
        method: expose.http.method.toUpperCase(),
        path: fullPath,
        ...compilePath(fullPath),
        commandName: command.commandName,
        description: command.commandDescription,
        receiver: {
          serviceName: info.serviceName,
          serviceVersion: info.serviceVersion,
          serviceTarget: command.commandName,
        },
        expose,
      })
    }
  }
  return routes
}

/** OpenAPI 3.1 document generated from the command definitions. */
export const buildOpenApi = (routes, { title, version }) => {
  const paths = {
    '/healthz': {
      get: {
        operationId: 'healthz',
        summary: 'liveness check',
        responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    },
  }
  for (const route of routes) {
    const { expose } = route
    const openApi = expose.http.openApi ?? {}
    const parameters = [
      ...route.paramNames.map(name => ({
        name,
        in: 'path',
        required: true,
        schema: expose.parameter?.properties?.[name] ?? { type: 'string' },
      })),
      ...(openApi.query ?? []).map(q => ({ name: q.name, in: 'query', required: !!q.required, schema: { type: 'string' } })),
    ]
    const operation = {
      operationId: openApi.operationId ?? route.commandName,
      summary: openApi.summary ?? route.commandName,
      description: openApi.description ?? route.description,
      tags: [route.receiver.serviceName, ...(openApi.tags ?? [])],
      'x-purista': { ...route.receiver, commandName: route.commandName },
      parameters,
      responses: {
        200: {
          description: 'success',
          content: { [expose.contentTypeResponse ?? 'application/json']: { schema: expose.outputPayload ?? {} } },
        },
        204: { description: 'success without content' },
        400: { description: 'input validation failed' },
        500: { description: 'unhandled error' },
        ...Object.fromEntries((openApi.additionalStatusCodes ?? []).map(code => [code, { description: statusTitle(code) }])),
      },
    }
    if (BODY_METHODS.has(route.method)) {
      operation.requestBody = {
        required: true,
        content: { [expose.contentTypeRequest ?? 'application/json']: { schema: expose.inputPayload ?? {} } },
      }
    }
    paths[route.openApiPath] = paths[route.openApiPath] ?? {}
    paths[route.openApiPath][route.method.toLowerCase()] = operation
  }
  return { openapi: '3.1.0', info: { title, version }, paths }
}

const readBody = req =>
  new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', chunk => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        reject(new HandledError(StatusCode.PayloadTooLarge, `request body larger than ${MAX_BODY_BYTES} bytes`))
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })

/**
 * @param {object} options
 * @param {import('@purista/core').EventBridge} options.eventBridge
 * @param {Array<import('@purista/core').Service>} options.services
 * @param {string} [options.apiMountPath]
 * @param {'v3'|'v2'} [options.errorStyle]
 * @param {{serviceName: string, serviceVersion: string, serviceTarget: string}} [options.faultSource] command that hands out fault rules
 * @param {(line: string) => void} [options.log]
 */
export const createHttpAdapter = ({
  eventBridge,
  services,
  apiMountPath = '/api',
  errorStyle = 'v3',
  faultSource,
  log = line => process.stderr.write(`${line}\n`),
}) => {
  const routes = collectRoutes(services, apiMountPath)
  const openApi = buildOpenApi(routes, { title: 'flowctl reference PURISTA services', version: '1.0.0' })
  const openApiPath = posix.join(apiMountPath, 'openapi.json')
  const sender = {
    serviceName: 'httpServer',
    serviceVersion: '1',
    serviceTarget: '',
    instanceId: eventBridge.instanceId,
  }

  const invoke = (receiver, endpoint, { payload, parameter, traceId, principalId, tenantId, expose }) =>
    eventBridge.invoke({
      sender: { ...sender, serviceTarget: `$$endpoint:${endpoint}` },
      receiver,
      payload: { payload, parameter },
      traceId,
      principalId,
      tenantId,
      contentType: expose?.contentTypeRequest ?? 'application/json',
      contentEncoding: expose?.contentEncodingRequest ?? 'utf-8',
    })

  const takeFault = async (route, traceId) => {
    if (!faultSource || route.receiver.serviceName === faultSource.serviceName) return undefined
    const answer = await invoke(faultSource, 'fault-check', {
      payload: { commandName: route.commandName },
      parameter: {},
      traceId,
    })
    return answer?.fault ?? undefined
  }

  const handle = async (req, res, ctx) => {
    const send = (status, body, contentType = 'application/json; charset=utf-8', headers = {}) => {
      ctx.status = status
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
      if (body === undefined || status === 204 || status === 304 || status < 200) {
        res.writeHead(status)
        res.end()
        return
      }
      const text = JSON.stringify(body)
      res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    const sendError = (status, message, data, headers) => {
      const { contentType, body } = errorBody(errorStyle, {
        status,
        message,
        data,
        traceId: ctx.traceId,
        instance: ctx.path,
      })
      send(status, body, contentType, headers)
    }

    try {
      const method = req.method.toUpperCase()

      if (method === 'GET' && ctx.path === '/healthz') {
        const healthy = await eventBridge.isHealthy()
        return healthy ? send(200, { status: 'ok' }) : sendError(503, 'event bridge not healthy')
      }
      if (method === 'GET' && ctx.path === openApiPath) {
        return send(200, openApi)
      }

      let pathSegments
      try {
        pathSegments = ctx.path.split('/').filter(Boolean).map(s => decodeURIComponent(s))
      } catch {
        return sendError(400, 'malformed percent-encoding in path')
      }
      let route
      let pathParams
      for (const r of routes) {
        if (r.method !== method) continue
        const params = matchSegments(r.segments, pathSegments)
        if (params) {
          route = r
          pathParams = params
          break
        }
      }
      if (!route) {
        return sendError(404, 'Route not found', { method, route: ctx.path })
      }
      ctx.commandName = route.commandName

      const rawBody = await readBody(req)

      const fault = await takeFault(route, ctx.traceId)
      if (fault) {
        ctx.fault = fault.faultId
        if (fault.delayMs) await sleep(fault.delayMs)
        if (fault.status !== undefined || fault.body !== undefined) {
          const status = fault.status ?? 200
          const headers = { 'x-fault-injected': fault.faultId, ...(fault.headers ?? {}) }
          if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter)
          else if (status === 429 || status === 503) headers['retry-after'] = '1'
          if (fault.body !== undefined) return send(status, fault.body, 'application/json; charset=utf-8', headers)
          if (status === 202) return send(status, { jobId: newId('job') }, 'application/json; charset=utf-8', headers)
          if (status >= 400) {
            return sendError(status, `injected fault for ${route.commandName}`, undefined, headers)
          }
          return send(status, status === 204 ? undefined : {}, 'application/json; charset=utf-8', headers)
        }
      }

      let payload
      if (BODY_METHODS.has(method)) {
        const wanted = route.expose.contentTypeRequest ?? 'application/json'
        const contentType = (req.headers['content-type'] ?? '').toLowerCase()
        if (!contentType.includes(wanted)) {
          return sendError(
            400,
            `Request must be content type ${wanted} ${route.expose.contentEncodingRequest ?? 'utf-8'}`,
          )
        }
        const text = rawBody.toString('utf8')
        if (text.trim() !== '') {
          try {
            payload = JSON.parse(text)
          } catch (err) {
            return sendError(400, `request body is not valid JSON: ${err.message}`)
          }
        }
      }

      const parameter = { ...ctx.query, ...pathParams }
      const principal = req.headers['x-principal-id']
      const tenant = req.headers['x-tenant-id']
      const result = await invoke(route.receiver, `${method.toLowerCase()}:${route.path}`, {
        payload,
        parameter,
        traceId: ctx.traceId,
        principalId: typeof principal === 'string' && principal ? principal : undefined,
        tenantId: typeof tenant === 'string' && tenant ? tenant : undefined,
        expose: route.expose,
      })
      if (result === undefined || result === null || result === '') {
        return send(204)
      }
      return send(200, result, `${route.expose.contentTypeResponse ?? 'application/json'}; charset=utf-8`)
    } catch (err) {
      if (err instanceof HandledError) {
        const status = err.errorCode >= 400 && err.errorCode <= 599 ? err.errorCode : 500
        return sendError(status, err.message, err.data)
      }
      ctx.error = err?.message ?? String(err)
      return sendError(500, statusTitle(500))
    }
  }

  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint()
    const url = new URL(req.url ?? '/', 'http://localhost')
    const ctx = {
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      traceId: traceIdFromHeaders(req.headers),
      status: 0,
    }
    res.setHeader('x-trace-id', ctx.traceId)
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      const extra = [
        ctx.commandName ? `command=${ctx.commandName}` : '',
        ctx.fault ? `fault=${ctx.fault}` : '',
        ctx.error ? `error=${JSON.stringify(ctx.error)}` : '',
      ]
        .filter(Boolean)
        .join(' ')
      log(`${new Date().toISOString()} http ${req.method} ${ctx.path} ${res.statusCode} trace=${ctx.traceId} ${ms.toFixed(1)}ms${extra ? ` ${extra}` : ''}`)
    })
    handle(req, res, ctx).catch(err => {
      log(`http handler failed: ${err?.stack ?? err}`)
      if (!res.headersSent) {
        res.writeHead(500)
      }
      res.end()
    })
  })

  return { server, routes, openApi }
}
