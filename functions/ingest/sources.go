package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/records"
)

// source is a push data source as ingest uses it: the integration, the manifest version whose
// streams it validates against, and those streams compiled. Streams that do not compile are
// kept with the reason, so an event naming one is refused with it.
type source struct {
	records.Source
	ClientID string
	Version  string
	Streams  map[string]*records.Stream
	Broken   map[string]string // stream -> why its schema is unusable
	loaded   time.Time
}

// errNoSource: no push source matches (an unknown client, or an integration that is not a
// push data source).
var errNoSource = errors.New("ingest: no push source")

// sources reads push sources and caches them for a TTL, keyed by push client id and by name.
type sources struct {
	db  querier
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	byClient map[string]*source
	byName   map[string]*source
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func newSources(db querier, ttl time.Duration, now func() time.Time) *sources {
	return &sources{db: db, ttl: ttl, now: now, byClient: map[string]*source{}, byName: map[string]*source{}}
}

const sourceQuery = `SELECT i.id::text, i.name, coalesce(i.m2m_app_id, ''), v.version,
		coalesce(v.manifest->'data_source'->'streams', '[]'::jsonb)
	FROM integrations i JOIN integration_versions v
		ON v.integration_id = i.id AND v.version = coalesce(i.current_version, i.latest_version)
	WHERE i.type = 'data_source' AND i.delivery_mode = 'push' AND `

// ByClient returns the push source whose integration client (m2m_app_id) is clientID.
func (s *sources) ByClient(ctx context.Context, clientID string) (*source, error) {
	if clientID == "" {
		return nil, errNoSource
	}
	return s.get(ctx, s.byClient, clientID, sourceQuery+`i.m2m_app_id = $1`)
}

// ByName returns the push source called name.
func (s *sources) ByName(ctx context.Context, name string) (*source, error) {
	return s.get(ctx, s.byName, name, sourceQuery+`i.name = $1`)
}

func (s *sources) get(ctx context.Context, cache map[string]*source, key, query string) (*source, error) {
	now := s.now()
	s.mu.Lock()
	src, ok := cache[key]
	s.mu.Unlock()
	if ok && now.Sub(src.loaded) < s.ttl {
		return src, nil
	}
	src, err := s.load(ctx, query, key)
	if err != nil {
		return nil, err
	}
	src.loaded = now
	s.mu.Lock()
	if len(s.byClient) > 10000 { // bounded: a cache, not a registry
		clear(s.byClient)
		clear(s.byName)
	}
	if src.ClientID != "" {
		s.byClient[src.ClientID] = src
	}
	s.byName[src.Name] = src
	s.mu.Unlock()
	return src, nil
}

func (s *sources) load(ctx context.Context, query, key string) (*source, error) {
	src := &source{Streams: map[string]*records.Stream{}, Broken: map[string]string{}}
	src.DeliveryMode = events.DeliveryPush
	var streams []byte
	err := s.db.QueryRow(ctx, query, key).Scan(&src.IntegrationID, &src.Name, &src.ClientID, &src.Version, &streams)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoSource
	}
	if err != nil {
		return nil, fmt.Errorf("ingest: load push source: %w", err)
	}
	var decl []struct {
		Name   string          `json:"name"`
		Key    []string        `json:"key"`
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(streams, &decl); err != nil {
		return nil, fmt.Errorf("ingest: push source %s: streams: %w", src.Name, err)
	}
	for _, d := range decl {
		switch {
		case len(d.Key) == 0:
			src.Broken[d.Name] = "the manifest version " + src.Version + " declares no key for this stream"
		case len(d.Schema) == 0:
			src.Broken[d.Name] = "the manifest version " + src.Version + " declares no schema for this stream"
		default:
			sch, err := records.CompileSchema(d.Schema)
			if err != nil {
				src.Broken[d.Name] = "the stream's schema in manifest version " + src.Version + ": " + err.Error()
				continue
			}
			src.Streams[d.Name] = &records.Stream{Name: d.Name, Key: d.Key, Schema: sch}
		}
	}
	return src, nil
}
