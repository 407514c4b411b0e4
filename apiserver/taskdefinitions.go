package apiserver

func (s *Server) registerTaskDefinitions() {}
