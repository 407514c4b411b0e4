package apiserver

func (s *Server) registerTags() {}
