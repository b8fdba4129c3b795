package main

import "github.com/myscrollr/connect/events"

// Thresholds of the status machine.
const (
	// failuresToOffline consecutive failed checks make an integration offline.
	failuresToOffline = 3
	// successesToRecover consecutive successful checks bring an offline integration back.
	successesToRecover = 2
)

// State is an integration's place in the status machine: the status shown on its listing
// and the runs of consecutive failed and successful checks that move it (a row of
// integration_health_state).
type State struct {
	Status    string // events.Health*: unknown, healthy, degraded, offline
	Failures  int    // consecutive failed checks, 0 after a success
	Successes int    // consecutive successful checks, 0 after a failure
}

// Next is the state after a check whose result is one of events.HealthHealthy,
// events.HealthDegraded (both successes) or events.HealthOffline (a failure):
//
//   - A success resets the failures. From unknown, healthy or degraded the status becomes the
//     check's result at once (healthy and degraded follow each successful check's speed and
//     report). From offline it takes successesToRecover consecutive successes; the last one
//     decides between healthy and degraded.
//   - A failure resets the successes. The failuresToOffline-th consecutive failure makes any
//     status offline. Fewer leave the status as it is: one or two failures are not evidence
//     enough to take a listing down, nor, from unknown, to call a new integration offline, so
//     unknown stays unknown until a success or the third failure.
func Next(s State, result string) State {
	if result == events.HealthOffline {
		s.Successes = 0
		s.Failures++
		if s.Failures >= failuresToOffline {
			s.Status = events.HealthOffline
		}
		return s
	}
	s.Failures = 0
	s.Successes++
	if s.Status != events.HealthOffline || s.Successes >= successesToRecover {
		s.Status = result
	}
	return s
}
