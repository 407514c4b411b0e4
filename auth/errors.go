package auth

import (
	"fmt"
	"strings"
	"time"

	"github.com/ecsd/ecsd/api/ecs"
)

// The errors below are worded the way AWS's front end words them, so that
// people searching for a message find the same advice they would for AWS.
// They are all *ecs.Error: a client's mistake, answered with HTTP 400.

func errMissingToken() error {
	return ecs.Errorf(ecs.CodeMissingAuthenticationToken, "Missing Authentication Token")
}

func errIncomplete(format string, args ...any) error {
	return ecs.Errorf(ecs.CodeIncompleteSignature, format, args...)
}

func errInvalid(format string, args ...any) error {
	return ecs.Errorf(ecs.CodeInvalidSignature, format, args...)
}

// errMismatch is the answer to a well-formed signature that does not verify.
func errMismatch() error {
	return errInvalid("The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
}

func errUnknownKey() error {
	return ecs.Errorf(ecs.CodeUnrecognizedClient, "The security token included in the request is invalid.")
}

// errMissingParts lists every required part a request lacks in one message,
// as AWS does ("... requires 'Credential' parameter. ... requires ...").
func errMissingParts(parts []string, authorization string) error {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p)
		b.WriteString(" ")
	}
	if authorization != "" {
		b.WriteString("Authorization=")
		b.WriteString(clip(authorization))
	}
	return errIncomplete("%s", strings.TrimSpace(b.String()))
}

// errSkew reports a request time outside the accepted window around now.
func errSkew(signed, now time.Time, skew time.Duration) error {
	if signed.Before(now) {
		return errInvalid("Signature expired: %s is now earlier than %s (%s - %s)",
			signed.Format(amzDateLayout), now.Add(-skew).Format(amzDateLayout), now.Format(amzDateLayout), skewText(skew))
	}
	return errInvalid("Signature not yet current: %s is still later than %s (%s + %s)",
		signed.Format(amzDateLayout), now.Add(skew).Format(amzDateLayout), now.Format(amzDateLayout), skewText(skew))
}

func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min.", int64(d/time.Minute))
	}
	return d.String()
}

// clip shortens a client-supplied value quoted in a message, so a huge header
// does not become a huge answer and log line.
func clip(s string) string {
	const max = 512
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
