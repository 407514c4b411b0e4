package testenv

import "github.com/ecsd/ecsd/apiserver"

func apiserverConfig() apiserver.Config {
	return apiserver.Config{DevMode: true, Version: "test"}
}
