package ecs

import "fmt"

// Error is an error as the wire carries it: a code from the model and a message.
// Anything that is not an *Error reaching the protocol edge is a server fault.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Codes that AWS's front end uses for every JSON-protocol service but that the
// ECS model does not declare.
const (
	CodeUnknownOperation           = "UnknownOperationException"
	CodeSerialization              = "SerializationException"
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
	CodeRequestEntityTooLarge      = "RequestEntityTooLarge"
	CodeThrottling                 = "ThrottlingException"
	CodeInternalFailure            = "InternalFailure"
)
