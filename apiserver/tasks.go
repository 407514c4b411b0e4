package apiserver

func (s *Server) registerTasks() {}
