// Package schemas holds the contracts of MyScrollr Connect as data: the numbered SQL
// migrations of the PostgreSQL schema and the JSON Schemas of manifests, records and event
// payloads. Both are embedded so every binary carries the exact version it was built with.
//
// Migrations are goose-format SQL files named NNNNN_description.sql under migrations/. They
// are applied by shared/db.Migrate; never edit a migration that has landed, add a new one.
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
