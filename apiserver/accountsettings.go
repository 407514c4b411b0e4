package apiserver

func (s *Server) registerAccountSettings() {}
