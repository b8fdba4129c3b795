package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stream is the state of one replication session's read loop. Only run's goroutine touches
// it, except tr (shared with the produce callbacks).
type stream struct {
	r        *Relay
	conn     *pgconn.PgConn
	kc       *kgo.Client
	tr       *tracker
	rels     map[uint32]*relation
	dec      *decoder
	row      row           // scratch for the insert being produced
	open     *txn          // between BEGIN and COMMIT
	received pglogrepl.LSN // highest position seen from the server
	replyNow bool          // the server asked for a status update
}

func (s *stream) run(ctx context.Context) error {
	cfg := s.r.cfg
	var lastSent pglogrepl.LSN
	var lastSentAt time.Time
	lastServer := time.Now()
	var rd readDeadline
	defer rd.stop()
	for {
		if ctx.Err() != nil {
			return s.drain()
		}
		if err := s.tr.failure(); err != nil {
			return fmt.Errorf("kafka produce: %w", err)
		}
		now := time.Now()
		conf := s.tr.confirmedPos()
		periodic := now.Sub(lastSentAt) >= cfg.StatusInterval
		if periodic || s.replyNow || (conf > lastSent && now.Sub(lastSentAt) >= confirmEvery) {
			// Ask for a reply on the periodic update: a server that never answers is gone.
			if err := s.status(conf, periodic); err != nil {
				return err
			}
			lastSent, lastSentAt, s.replyNow = conf, now, false
		}
		if s.kc.BufferedProduceRecords() >= int64(cfg.MaxInFlight) {
			// Back-pressure: leave the WAL with the server until Kafka catches up, but keep
			// sending status updates so the walsender does not time out.
			select {
			case <-ctx.Done():
			case <-time.After(confirmEvery):
			}
			lastServer = time.Now()
			continue
		}
		if silent := now.Sub(lastServer); silent > 3*cfg.StatusInterval {
			return fmt.Errorf("no message from PostgreSQL for %s", silent.Round(time.Second))
		}
		msg, err := s.conn.ReceiveMessage(rd.context(ctx, now))
		if err != nil {
			if ctx.Err() != nil || pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		lastServer = time.Now()
		if err := s.handle(msg); err != nil {
			return err
		}
	}
}

// readDeadline is the context bounding reads from the replication connection. One deadline
// serves every message until it passes: a context per message cost as much CPU as decoding
// the message.
type readDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
	at     time.Time
}

// context returns a context that ends at most confirmEvery after now.
func (rd *readDeadline) context(parent context.Context, now time.Time) context.Context {
	if rd.ctx == nil || !now.Before(rd.at) {
		rd.stop()
		rd.at = now.Add(confirmEvery)
		rd.ctx, rd.cancel = context.WithDeadline(parent, rd.at)
	}
	return rd.ctx
}

func (rd *readDeadline) stop() {
	if rd.cancel != nil {
		rd.cancel()
	}
}

// status sends a standby status update confirming conf.
func (s *stream) status(conf pglogrepl.LSN, reply bool) error {
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: max(s.received, conf),
		WALFlushPosition: conf,
		WALApplyPosition: conf,
		ClientTime:       s.r.now(),
		ReplyRequested:   reply,
	})
	if err != nil {
		return fmt.Errorf("send status update: %w", err)
	}
	return nil
}

// drain waits (bounded) for Kafka to acknowledge what is in flight and confirms it.
func (s *stream) drain() error {
	dctx, cancel := context.WithTimeout(context.Background(), s.r.cfg.DrainTimeout)
	defer cancel()
	if err := s.kc.Flush(dctx); err != nil {
		s.r.log.Warn("shutdown: records still unacknowledged; they will be relayed again", slog.Any("error", err))
	}
	conf := s.tr.confirmedPos()
	if err := s.status(conf, false); err != nil {
		s.r.log.Warn("shutdown: last status update", slog.Any("error", err))
		return nil
	}
	s.r.log.Info("relay stopped", slog.String("confirmed", conf.String()))
	return nil
}

func (s *stream) handle(msg pgproto3.BackendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.CopyData:
		if len(m.Data) == 0 {
			return errors.New("empty CopyData message")
		}
		switch m.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
			if err != nil {
				return fmt.Errorf("keepalive: %w", err)
			}
			s.received = max(s.received, pkm.ServerWALEnd)
			if s.open == nil {
				// Everything before the keepalive was sent before it; if nothing is waiting
				// for Kafka, the position is done.
				s.tr.idle(pkm.ServerWALEnd)
			}
			if pkm.ReplyRequested {
				s.replyNow = true
			}
			return nil
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(m.Data[1:])
			if err != nil {
				return fmt.Errorf("xlogdata: %w", err)
			}
			s.received = max(s.received, xld.WALStart)
			return s.logical(xld.WALData)
		}
		return nil
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(m))
	case *pgproto3.CopyDone, *pgproto3.CommandComplete, *pgproto3.ReadyForQuery:
		return errors.New("server ended the replication stream")
	case *pgproto3.NoticeResponse:
		return nil
	default:
		return fmt.Errorf("unexpected message %T in the replication stream", msg)
	}
}

// logical handles one pgoutput message. Inserts, nearly every message, are decoded in place
// (pglogrepl.Parse allocates a few dozen objects per tuple); the rest through pglogrepl.
func (s *stream) logical(data []byte) error {
	if len(data) == 0 {
		return errors.New("pgoutput: empty message")
	}
	if data[0] == byte(pglogrepl.MessageTypeInsert) {
		if s.open == nil {
			return errors.New("pgoutput: INSERT outside a transaction")
		}
		err := decodeInsert(data[1:], s.relation, &s.row)
		if errors.Is(err, errMalformed) {
			return fmt.Errorf("pgoutput: %w", err)
		}
		s.produce(&s.row, err)
		return nil
	}
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return fmt.Errorf("pgoutput: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		s.rels[m.RelationID] = relationOf(m)
	case *pglogrepl.BeginMessage:
		s.open = s.tr.begin(m.CommitTime)
	case *pglogrepl.CommitMessage:
		if s.open == nil {
			return errors.New("pgoutput: COMMIT without BEGIN")
		}
		s.tr.commit(s.open, m.TransactionEndLSN)
		s.open = nil
	}
	// UPDATE, DELETE, TRUNCATE, TYPE, ORIGIN and logical messages are not outbox events.
	return nil
}

func (s *stream) relation(id uint32) (*relation, bool) {
	rel, ok := s.rels[id]
	return rel, ok
}

// produce sends the event of one inserted row (or its dead letter) asynchronously. rowErr is
// why the tuple itself could not be read as a row, if it could not.
func (s *stream) produce(rw *row, rowErr error) {
	r := s.r
	var (
		rec  *kgo.Record
		dead bool
		err  = rowErr
	)
	if err != nil {
		rec, dead = deadLetter(rw, err), true
	} else {
		rec, dead, err = s.dec.record(rw)
	}
	if dead {
		r.m.invalid.Inc()
		r.log.Error("outbox row is not a valid CloudEvent; sent to the dead-letter topic",
			slog.String("id", string(rw.get(colID))), slog.String("dlq", rec.Topic), slog.Any("error", err))
	}
	x, tr := s.open, s.tr
	tr.produced(x, r.now())
	s.kc.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
		at := r.now()
		tr.ack(x, err, at)
		if err != nil {
			return
		}
		r.m.lastAck.Set(float64(at.UnixNano()) / 1e9)
		if !dead {
			r.m.events.Inc()
		}
		if r.onAck != nil {
			r.onAck(x.commit, at)
		}
	})
}
