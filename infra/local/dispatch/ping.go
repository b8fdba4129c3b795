package dispatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
	"github.com/myscrollr/connect/infra/local/knative"
	"github.com/robfig/cron/v3"
)

// PingEventType is the type of PingSource events.
const PingEventType = "dev.knative.sources.ping"

// pinger sends one PingSource's ticks.
type pinger struct {
	ps    knative.PingSource
	sched cron.Schedule
	loc   *time.Location
	send  *sender
	clock Clock
}

func newPinger(cfg Config, ps knative.PingSource) (*pinger, error) {
	sched, err := cron.ParseStandard(ps.Schedule)
	if err != nil {
		return nil, fmt.Errorf("dispatch: %s: PingSource %q: field spec.schedule: %v", ps.File, ps.Name, err)
	}
	loc := time.UTC
	if ps.Timezone != "" {
		if loc, err = time.LoadLocation(ps.Timezone); err != nil {
			return nil, fmt.Errorf("dispatch: %s: PingSource %q: field spec.timezone: %v", ps.File, ps.Name, err)
		}
	}
	log := cfg.Logger.With("route", "PingSource "+ps.Namespace+"/"+ps.Name)
	return &pinger{ps: ps, sched: sched, loc: loc, clock: cfg.Clock, send: &sender{cfg: cfg, log: log}}, nil
}

// run sends a tick at each scheduled time until ctx is done. Each tick is delivered in its own
// goroutine so a slow sink does not delay the schedule.
func (p *pinger) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		now := p.clock.Now().In(p.loc)
		next := p.sched.Next(now)
		if err := p.clock.Sleep(ctx, next.Sub(now)); err != nil {
			return
		}
		e := PingEvent(p.ps, next, uuid.NewString())
		wg.Go(func() {
			_ = p.send.deliver(ctx, p.ps.Sink, e, PingDelivery, deadLetter{}, nil)
		})
	}
}

// PingEvent is the event a PingSource sends for the tick at t: type dev.knative.sources.ping,
// source /apis/v1/namespaces/<ns>/pingsources/<name>, time t, the data with its content type.
func PingEvent(ps knative.PingSource, t time.Time, id string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(PingEventType)
	e.SetSource("/apis/v1/namespaces/" + ps.Namespace + "/pingsources/" + ps.Name)
	e.SetTime(t)
	if len(ps.Data) > 0 {
		e.DataEncoded = ps.Data
		if ps.ContentType != "" {
			e.SetDataContentType(ps.ContentType)
		}
	}
	return e
}
