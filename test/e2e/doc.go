// Package e2e proves ecsd with the clients people really use: the built binary is
// started as a subprocess on a loopback port and driven by the aws CLI, Terraform
// with the offline AWS provider, and the AWS SDK for Go.
//
// The tests skip when a tool (aws, terraform) is missing, unless
// ECSD_E2E_REQUIRED=1 (as .ci/run sets), where they fail instead.
package e2e
