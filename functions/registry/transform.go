package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/records"
	"github.com/myscrollr/connect/wasmhost"
	"github.com/myscrollr/connect/wasmhost/abi"
)

// Bounds of the transform routes.
const (
	// WasmContentType is the media type of a module upload.
	WasmContentType = wasmhost.WasmMediaType
	// MaxTryRecords bounds the sample records of one dry run.
	MaxTryRecords = 500
	// MaxTryBody bounds a dry run's body.
	MaxTryBody = 4 << 20
)

// transformRow is a stored transform, as the routes answer it.
type transformRow struct {
	Integration string    `json:"integration"`
	Version     string    `json:"version"`
	SHA256      string    `json:"sha256"`
	Size        int       `json:"size"`
	ABIVersion  int       `json:"abi_version"`
	CreatedAt   time.Time `json:"created_at"`
}

// ownedVersion returns the id of the caller's integration name if it has version, or a 404.
func (s *Service) ownedVersion(ctx context.Context, name, version, developer string) (id string, manifestDoc []byte, err error) {
	err = s.pool.QueryRow(ctx, `SELECT i.id::text, v.manifest FROM integrations i
		JOIN integration_versions v ON v.integration_id = i.id AND v.version = $3
		WHERE i.name = $1 AND i.developer_id = $2`, name, developer, version).Scan(&id, &manifestDoc)
	if errors.Is(err, pgx.ErrNoRows) {
		var mine bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE name = $1 AND developer_id = $2)`, name, developer).Scan(&mine); err != nil {
			return "", nil, err
		}
		if !mine {
			return "", nil, notYours(name)
		}
		return "", nil, httpx.NotFound(fmt.Sprintf("integration %s has no version %s", name, strconv.Quote(clip.String(version, 64))))
	}
	return id, manifestDoc, err
}

// putTransform stores the WASM transform of a version: the body is the module, refused with
// its reason (not WebAssembly, too big, forbidden imports, missing exports, a start that traps
// or spins) before it is stored; stored with its sha256, replacing the version's previous one.
func (s *Service) putTransform(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	if s.wasm == nil {
		return httpx.Unavailable("transforms are not enabled here", errors.New("registry: no wasm host"))
	}
	name, version := r.PathValue("name"), r.PathValue("version")
	ctx := r.Context()
	id, _, err := s.ownedVersion(ctx, name, version, p.Subject)
	if err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != WasmContentType {
		return httpx.BadRequest("Content-Type must be "+WasmContentType, httpx.FieldError{Field: "Content-Type", Reason: "must be " + WasmContentType + ", the module's bytes"})
	}
	body, prob := httpx.ReadBody(w, r, int64(s.wasmMaxModule))
	if prob != nil {
		return prob
	}
	m, err := s.wasm.Load(ctx, body)
	var me *wasmhost.ModuleError
	if errors.As(err, &me) {
		return httpx.BadRequest("the transform module is refused: "+me.Reason, httpx.FieldError{Field: "body", Reason: me.Reason})
	}
	if err != nil {
		return err
	}
	info := m.Info()
	row := transformRow{Integration: name, Version: version, SHA256: info.SHA256, Size: info.Size, ABIVersion: info.ABIVersion}
	err = s.pool.QueryRow(ctx, `INSERT INTO integration_transforms (integration_id, version, module, sha256, size, abi_version, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (integration_id, version) DO UPDATE SET module = EXCLUDED.module, sha256 = EXCLUDED.sha256,
			size = EXCLUDED.size, abi_version = EXCLUDED.abi_version, created_at = EXCLUDED.created_at
		RETURNING created_at`, id, version, body, info.SHA256, info.Size, info.ABIVersion, s.now().UTC()).Scan(&row.CreatedAt)
	if err != nil {
		return fmt.Errorf("registry: store transform: %w", err)
	}
	httpx.WriteJSON(w, http.StatusOK, row)
	return nil
}

// tryRequest is a dry run's body: sample records as a source would send them.
type tryRequest struct {
	Records []struct {
		Stream string          `json:"stream"`
		Data   json.RawMessage `json:"data"`
	} `json:"records"`
}

// tryResult is one record's outcome: the normalized data or the problems.
type tryResult struct {
	Data     json.RawMessage   `json:"data,omitempty"`
	Problems []records.Problem `json:"problems,omitempty"`
}

// tryTransform runs sample records through the version's stored transform as the data path
// would (checked against the stream's declared schema when the manifest declares one, then
// normalized, then the output checked) and answers every record's outcome and the module's
// log. A batch the module fails (trap, time or memory limit, broken output) is a 422 with the
// reason: it is the developer's module failing on the developer's sample.
func (s *Service) tryTransform(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	if s.wasm == nil {
		return httpx.Unavailable("transforms are not enabled here", errors.New("registry: no wasm host"))
	}
	name, version := r.PathValue("name"), r.PathValue("version")
	ctx := r.Context()
	id, manifestDoc, err := s.ownedVersion(ctx, name, version, p.Subject)
	if err != nil {
		return err
	}
	var req tryRequest
	if err := httpx.DecodeJSON(r, &req, MaxTryBody); err != nil {
		return err
	}
	if len(req.Records) == 0 || len(req.Records) > MaxTryRecords {
		return httpx.BadRequest("invalid dry run", httpx.FieldError{Field: "/records", Reason: fmt.Sprintf("must hold 1 to %d records", MaxTryRecords)})
	}
	var sum string
	if err := s.pool.QueryRow(ctx, `SELECT sha256 FROM integration_transforms WHERE integration_id = $1 AND version = $2`, id, version).Scan(&sum); errors.Is(err, pgx.ErrNoRows) {
		return httpx.NotFound(fmt.Sprintf("version %s of %s has no transform: PUT one first", version, name))
	} else if err != nil {
		return err
	}
	m := s.wasm.Get(sum)
	if m == nil {
		b, err := records.TransformModule(ctx, s.pool, id, sum)
		if err != nil {
			return err
		}
		var me *wasmhost.ModuleError
		if m, err = s.wasm.Load(ctx, b); errors.As(err, &me) {
			return &httpx.Problem{Status: http.StatusUnprocessableEntity, Title: "Unprocessable Content", Detail: "the stored transform is refused: " + me.Reason}
		} else if err != nil {
			return err
		}
	}
	streams := declaredStreams(manifestDoc)
	results := make([]tryResult, len(req.Records))
	var in []abi.Input
	var at []int
	for i, rec := range req.Records {
		if probs := checkSample(rec.Stream, rec.Data, streams); len(probs) > 0 {
			results[i].Problems = probs
			continue
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, rec.Data) // valid: checkSample parsed it
		in = append(in, abi.Input{Stream: rec.Stream, Data: compact.Bytes()})
		at = append(at, i)
	}
	out := struct {
		Results    []tryResult `json:"results"`
		Log        string      `json:"log,omitempty"`
		LogDropped int64       `json:"log_dropped_bytes,omitempty"`
	}{Results: results}
	if len(in) > 0 {
		batch, err := m.Run(ctx, in)
		var be *wasmhost.BatchError
		if errors.As(err, &be) {
			return &httpx.Problem{Status: http.StatusUnprocessableEntity, Title: "Unprocessable Content", Detail: "the transform failed the batch: " + be.Reason}
		}
		if err != nil {
			return err
		}
		for j, res := range batch.Results {
			i := at[j]
			switch {
			case res.Refused:
				results[i].Problems = []records.Problem{{Field: "/data" + res.Field, Reason: res.Reason}}
			case !json.Valid(res.Data) || !isObject(res.Data):
				results[i].Problems = []records.Problem{{Field: "/data", Reason: "the transform's output is not a JSON object"}}
			default:
				results[i].Data = json.RawMessage(res.Data)
			}
		}
		out.Log, out.LogDropped = batch.Log, batch.LogDropped
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// declaredStreams compiles the streams a version's manifest declares with a schema (push
// sources); a stream without one is checked only as a JSON object.
func declaredStreams(doc []byte) map[string]*records.Stream {
	var m manifest.Manifest
	if json.Unmarshal(doc, &m) != nil || m.DataSource == nil {
		return nil
	}
	out := map[string]*records.Stream{}
	for _, st := range m.DataSource.Streams {
		if len(st.Schema) == 0 {
			continue
		}
		sch, err := records.CompileSchema(st.Schema)
		if err != nil {
			continue // registration validated it; nothing to check against
		}
		out[st.Name] = &records.Stream{Name: st.Name, Key: st.Key, Schema: sch}
	}
	return out
}

// checkSample checks one sample record as the data path would before the transform.
func checkSample(stream string, data json.RawMessage, streams map[string]*records.Stream) []records.Problem {
	if !records.StreamName.MatchString(stream) {
		return []records.Problem{{Field: "/stream", Reason: "must be 1 to 63 lower-case letters, digits or underscores, starting with a letter"}}
	}
	if len(data) > records.MaxRecordBytes {
		return []records.Problem{{Field: "/data", Reason: fmt.Sprintf("larger than %d bytes", records.MaxRecordBytes)}}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return []records.Problem{{Field: "/data", Reason: "not valid JSON"}}
	}
	if _, ok := v.(map[string]any); !ok {
		return []records.Problem{{Field: "/data", Reason: "must be a JSON object"}}
	}
	st := streams[stream]
	if st == nil {
		return nil
	}
	_, probs, err := records.Check(context.Background(), records.Source{}, st, v, data, records.Identity{})
	if err != nil {
		return []records.Problem{{Field: "/data", Reason: err.Error()}}
	}
	for i := range probs {
		probs[i].Field = "/data" + probs[i].Field
	}
	return probs
}

// enableTransforms turns the transform routes on with host, whose modules are at most
// maxModule bytes (wasmhost.Config.MaxModuleBytes).
func (s *Service) enableTransforms(host *wasmhost.Host, maxModule int) {
	s.wasm, s.wasmMaxModule = host, maxModule
}
