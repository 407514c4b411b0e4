package apiserver

func (s *Server) registerClusters() {}
