// Package agent is the node agent: it registers the machine as a container
// instance, keeps one connection to the server (package session), and runs the
// tasks assigned to it as Docker containers (package engine), serving the task
// metadata endpoint (package tmds).
//
//	server ──Tasks──▶ session ──Apply──▶ engine ──▶ runtime/docker ──▶ dockerd
//	server ◀─StateChange── session ◀──Report── engine
//
// This file holds the two contracts between session and engine.
package agent

import agentapi "github.com/ecsd/ecsd/api/agent"

// TaskApplier receives desired state from the server. Apply must not block for
// long: it hands the assignments to the engine's goroutines and returns.
type TaskApplier interface {
	Apply(tasks agentapi.Tasks)
}

// Reporter delivers task state changes to the server, in order, with retry
// across reconnects. Report must not block for long; the session assigns the
// sequence number.
type Reporter interface {
	Report(sc agentapi.StateChange)
}
