package engine

// Task statuses (ECS's lastStatus values), stored as strings as ECS reports
// them. Container statuses are PENDING, RUNNING and STOPPED.
const (
	StatusProvisioning   = "PROVISIONING"
	StatusPending        = "PENDING"
	StatusActivating     = "ACTIVATING"
	StatusRunning        = "RUNNING"
	StatusDeactivating   = "DEACTIVATING"
	StatusStopping       = "STOPPING"
	StatusDeprovisioning = "DEPROVISIONING"
	StatusStopped        = "STOPPED"
)

// statusRank orders the statuses: the known status only moves up.
var statusRank = map[string]int{
	StatusProvisioning: 0, StatusPending: 1, StatusActivating: 2, StatusRunning: 3,
	StatusDeactivating: 4, StatusStopping: 5, StatusDeprovisioning: 6, StatusStopped: 7,
}

// facts are what the transition table needs to know beyond the two statuses.
type facts struct {
	// created: some container of the task (not the pause container) exists,
	// so stopping has work to do.
	created bool
	// network: the task holds a pause container (awsvpc) to release.
	network bool
}

// transitions is the table the known status moves through, one step at a
// time. Each entry is the next status on the way to a desired status; the
// task's goroutine does the work that leaves a status (see task.step) and then
// reports the next one.
//
//	desired RUNNING: PROVISIONING → PENDING → ACTIVATING → RUNNING
//	desired STOPPED: … → DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED
//
// A task stopped before any of its containers was created has nothing to
// deactivate or stop: it goes to DEPROVISIONING if it holds a network, else
// straight to STOPPED.
var transitions = map[string]struct{ toRunning, toStopped string }{
	StatusProvisioning:   {StatusPending, StatusDeactivating},
	StatusPending:        {StatusActivating, StatusDeactivating},
	StatusActivating:     {StatusRunning, StatusDeactivating},
	StatusRunning:        {"", StatusDeactivating},
	StatusDeactivating:   {"", StatusStopping},
	StatusStopping:       {"", StatusDeprovisioning},
	StatusDeprovisioning: {"", StatusStopped},
	StatusStopped:        {"", ""},
}

// nextStatus is the next known status on the way to desired ("" when there
// is nothing to do). desired is RUNNING or STOPPED.
func nextStatus(known, desired string, f facts) string {
	tr, ok := transitions[known]
	if !ok {
		return ""
	}
	if desired != StatusStopped {
		return tr.toRunning
	}
	next := tr.toStopped
	if next == StatusDeactivating && statusRank[known] < statusRank[StatusRunning] && !f.created {
		if f.network {
			return StatusDeprovisioning
		}
		return StatusStopped
	}
	return next
}

// tmdsTaskStatus maps a task status onto the ECS agent's own task statuses,
// which the metadata endpoint shows.
func tmdsTaskStatus(s string, created bool) string {
	switch s {
	case StatusProvisioning, StatusPending:
		if created {
			return "CREATED"
		}
		return "NONE"
	case StatusStopped:
		return "STOPPED"
	default:
		return "RUNNING"
	}
}
