package apiserver

import "net/http"

// registerAgentEndpoints mounts the agent protocol (api/agent) on mux.
func (s *Server) registerAgentEndpoints(mux *http.ServeMux) {}
