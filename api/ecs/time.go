package ecs

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Time is an AWS JSON-protocol timestamp: epoch seconds on the wire, with
// millisecond precision, as a number (the Go SDK rejects ISO strings).
type Time struct{ time.Time }

// NewTime returns t as a wire timestamp truncated to milliseconds.
func NewTime(t time.Time) *Time { return &Time{t.Truncate(time.Millisecond)} }

func (t Time) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		s, err := strconv.Unquote(string(b))
		if err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			t.Time = fromEpoch(f)
			return nil
		}
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q: want epoch seconds or RFC 3339", s)
		}
		t.Time = p
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: want epoch seconds", b)
	}
	t.Time = fromEpoch(f)
	return nil
}

func fromEpoch(f float64) time.Time {
	return time.UnixMilli(int64(f*1000 + 0.5*sign(f))).UTC()
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}
