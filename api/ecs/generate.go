// Package ecs holds the Amazon ECS wire types, generated from the AWS service model,
// plus the few hand-written pieces they need (timestamps, validation, errors).
// It imports nothing of ecsd's own.
package ecs

//go:generate go run ../../tools/apigen -model ../../../shared/api-models/ecs-2014-11-13.service-2.json.gz -package ecs -out zz_generated.go
