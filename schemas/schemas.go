// Package schemas holds the contracts of MyScrollr Connect as data: the numbered SQL
// migrations of the PostgreSQL schema, the JSON Schemas of manifests, records and problem
// documents, and the OpenAPI 3.1 description of the HTTP APIs. All are embedded so every
// binary carries the exact version it was built with.
//
// The JSON Schemas of event payloads (one per CloudEvent type) are contracts too, but they live
// in the events module, at events/eventschema/json/<type>.json, embedded and enforced by
// package eventschema. The reason is distribution: integration developers `go get` the events
// module, and go get ignores a dependency's replace directives, so events cannot require this
// module (which is not published); it must build on its own, schemas included.
//
// Migrations are goose-format SQL files named NNNNN_description.sql under migrations/. They
// are applied by shared/db/migrate (migrate.Up); never edit a migration that has landed, add a new one.
package schemas

import "embed"

// Migrations is the directory "migrations" of numbered SQL files.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// JSON is the directory "json" of JSON Schemas (draft 2020-12).
//
//go:embed json
var JSON embed.FS

// OpenAPI is the directory "openapi": connect.yaml, the OpenAPI 3.1 description of the
// functions' public HTTP routes (checked against them by tests/apicheck), and its README.
//
//go:embed openapi
var OpenAPI embed.FS
