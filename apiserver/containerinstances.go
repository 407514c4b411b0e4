package apiserver

func (s *Server) registerContainerInstances() {}
