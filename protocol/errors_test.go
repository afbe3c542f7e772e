package protocol

import (
	"errors"
	"testing"
)

func TestRefusal(t *testing.T) {
	for _, tc := range []struct {
		status, msg string
		is          error
		want        string
	}{
		{StatusShuttingDown, "bye", ErrShuttingDown, "request refused by server: server is shutting down"},
		{StatusClockBehind, "later", ErrClockBehind, "request refused by server: server clock behind its last stamp (later)"},
		{StatusInternal, "disk\x1b[2J full", ErrRefused, "request refused by server: internal-error: disk?[2J full"},
	} {
		err := Refusal("server", []byte(tc.status), []byte(tc.msg))
		if !errors.Is(err, ErrRefused) || !errors.Is(err, tc.is) || err.Error() != tc.want {
			t.Errorf("Refusal(%q, %q) = %q, want %q (and errors.Is %v)", tc.status, tc.msg, err, tc.want, tc.is)
		}
	}
}
