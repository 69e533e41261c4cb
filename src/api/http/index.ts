// The HTTP/JSON API: simple routes (/get, /set, /delete), REST routes (/v1/kv/<key>, /v1/status,
// /v1/members, /v1/leader), /health and /metrics. See README.md in this folder for the routes
// and the encoding rules.
export { startHttpServer, type HttpServer, type HttpServerOptions } from './server.js';
export { HTTP_STATUS_BY_CODE, HttpOnlyCode, type HttpErrorCode, errorResponse } from './errors.js';
